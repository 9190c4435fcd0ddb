"""Test-only URLs for the logging, request context and Sentry tests: never part of the product.

Used in-process with @pytest.mark.urls and by gunicorn through settings_for_logging.
"""

import json
import logging
import threading
import time

import structlog
from django.db import connection
from django.http import JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from apps.common.request_context import current_request_id, current_request_state
from tests.observability import canaries

stdlib_logger = logging.getLogger("apps.logging_test")
structlog_logger = structlog.get_logger("apps.logging_test")

# The threaded test lets two requests meet inside their views.
rendezvous = threading.Barrier(2, timeout=10)


def item(request, pk):
    stdlib_logger.info("stdlib line for item %s", pk)
    structlog_logger.info("structlog line", item=pk)
    return JsonResponse(
        {"request_id": current_request_id(), "route": current_request_state().route, "pk": pk}
    )


def meet(request, name):
    """Two requests in two threads, interleaved: log, wait for the other, log again."""
    structlog_logger.info("before meeting", name=name)
    rendezvous.wait()
    structlog_logger.info("after meeting", name=name)
    return JsonResponse({"request_id": current_request_id(), "name": name})


def bind_and_forget(request):
    """View code that binds log context and never unbinds it."""
    structlog.contextvars.bind_contextvars(leaked_from_previous_request=True)
    structlog_logger.info("bound")
    return JsonResponse({"ok": True})


@csrf_exempt
def boom(request):
    """A 500 whose exception message and local variables carry secrets."""
    payload = json.loads(request.body or b"{}")
    database_url = f"postgres://orders:{canaries.DATABASE_PASSWORD}@db.internal:5432/orders"
    structlog_logger.warning("about to fail", fields=sorted(payload))
    raise RuntimeError(
        f"could not connect to {database_url} with api key {canaries.API_KEY} "
        f"(password={canaries.MESSAGE_PASSWORD}, keys {sorted(payload)})"
    )


def slow(request):
    """Slow, with queries whose parameters must never be logged."""
    with connection.cursor() as cursor:
        for _ in range(3):
            cursor.execute("SELECT %s, %s", [canaries.QUERY_PARAMETER, 1])
        cursor.execute("SELECT 1 WHERE 1 IN (%s, %s, %s)", [1, 2, 3])
    time.sleep(float(request.GET.get("sleep", "0.06")))
    return JsonResponse({"ok": True})


def server_error_response(request):
    return JsonResponse({"error": "upstream"}, status=503)


urlpatterns = [
    path("logging-test/items/<int:pk>/", item),
    path("logging-test/meet/<str:name>/", meet),
    path("logging-test/bind/", bind_and_forget),
    path("logging-test/boom/", boom),
    path("logging-test/slow/", slow),
    path("logging-test/unavailable/", server_error_response),
    path("", include("project.urls")),
]
