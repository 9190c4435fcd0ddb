"""Bench-only URLs, mounted by bench/bench_settings.py instead of the project's URLs.

The views go through the project's whole middleware stack (unlike /health, which ProbeMiddleware
answers early). The project's own URLs are left out on purpose: the bench must not depend on
views that are being changed while it runs.
"""

import os

from django.contrib.auth.models import Permission
from django.db import connection
from django.http import JsonResponse
from django.urls import path

ROWS = 50
IO_WAIT_SECONDS = 0.02


def pid(request):
    """Which worker answered: the bench waits until every worker has answered once."""
    return JsonResponse({"pid": os.getpid()})


def rows(request):
    """A typical read: one query returning 50 small rows, serialised to JSON."""
    permissions = Permission.objects.order_by("id").values("id", "codename", "name", "content_type")
    return JsonResponse({"rows": list(permissions[:ROWS])})


def io_wait(request):
    """A view that mostly waits on a slow dependency (20 ms in PostgreSQL), barely using CPU."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [IO_WAIT_SECONDS])
    return JsonResponse({"waited_ms": IO_WAIT_SECONDS * 1000})


urlpatterns = [
    path("bench/pid", pid),
    path("bench/rows", rows),
    path("bench/io-wait", io_wait),
]
