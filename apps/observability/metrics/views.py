"""/metrics: the Prometheus exposition of every process.

/metrics is answered by ProbeMiddleware (Prometheus scrapes the pod IP, which ALLOWED_HOSTS
rejects), so it runs before the session middleware: the session of a member of staff holding
observability.view_ops is read here.
"""

from importlib import import_module

import prometheus_client
from django.conf import settings
from django.contrib import auth
from django.http import HttpResponse
from django.utils.functional import SimpleLazyObject
from django.views.decorators.cache import never_cache

from apps.observability.authorization import access_denied, has_valid_token
from apps.observability.metrics.pending import request_updates
from apps.observability.metrics.registry import exposition, update_gauges


def _attach_session_user(request):
    """request.user from the session cookie, as SessionMiddleware + AuthenticationMiddleware do."""
    engine = import_module(settings.SESSION_ENGINE)
    request.session = engine.SessionStore(request.COOKIES.get(settings.SESSION_COOKIE_NAME))
    request.user = SimpleLazyObject(lambda: auth.get_user(request))


@never_cache
def metrics_view(request):
    """Prometheus exposition for `Authorization: Bearer $METRICS_TOKEN` or an ops session."""
    if not has_valid_token(request) and not hasattr(request, "user"):
        _attach_session_user(request)
    denied = access_denied(request)
    if denied is not None:
        return denied
    update_gauges()
    # This process's requests are in the files before they are read; other processes' are at
    # most one flusher cycle old (metrics/pending.py).
    request_updates.write()
    return HttpResponse(exposition(), content_type=prometheus_client.CONTENT_TYPE_LATEST)
