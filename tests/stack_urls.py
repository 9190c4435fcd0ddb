"""The service's URLs plus two drill views (tests/stack_settings.py):

- /drill/error/ fails as a broken view does: an unhandled exception, answered 500 by the
  service's own error handling and counted as one;
- /drill/slow/?seconds=N holds its thread N seconds (at most 10), as a request waiting on a slow
  database does, so that requests are in flight when Prometheus scrapes.
"""

import time

from django.http import JsonResponse
from django.urls import path

from project.urls import handler400, handler500
from project.urls import urlpatterns as service_urlpatterns

MAX_SLOW_SECONDS = 10.0


class InjectedFault(Exception):
    """Raised on purpose by the error drill."""


def failing_view(request):
    raise InjectedFault("injected by the error drill")


def slow_view(request):
    try:
        seconds = min(float(request.GET.get("seconds", "1")), MAX_SLOW_SECONDS)
    except ValueError:
        return JsonResponse({"detail": "seconds: not a number"}, status=400)
    time.sleep(max(seconds, 0.0))
    return JsonResponse({"slept": seconds})


urlpatterns = [
    path("drill/error/", failing_view, name="drill-error"),
    path("drill/slow/", slow_view, name="drill-slow"),
    *service_urlpatterns,
]
__all__ = ["handler400", "handler500", "urlpatterns"]
