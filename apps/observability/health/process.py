"""What the ops endpoints say about the process that answered: /health, /health-detailed, /stats."""

import os
import platform
import time

import django
from django.conf import settings

from apps.common.database import all_pool_statistics

PROCESS_STARTED = time.monotonic()


def uptime_seconds():
    return round(time.monotonic() - PROCESS_STARTED, 1)


def process_information():
    """Which process answered, since when, running what, with which database pools."""
    return {
        "pid": os.getpid(),
        "uptime_seconds": uptime_seconds(),
        "environment": settings.DJANGO_ENV,
        "versions": {
            "python": platform.python_version(),
            "django": django.get_version(),
            "git_sha": settings.GIT_SHA,
        },
        "database_pools": all_pool_statistics(),
    }
