import json
import logging
import threading

import structlog

from apps.common.paths import PROBE_PATHS
from apps.observability.health import views
from apps.observability.metrics import views as metrics

PROBES = {
    "/health": views.liveness,
    "/ready": views.readiness,
    # Prometheus scrapes the pod IP too; the view checks the token (or a staff session) itself.
    "/metrics": metrics.metrics_view,
}
# Probes whose answers are not logged by `django.request` (SkipRequestsWithAccessLine in
# logging/formatting.py): the kubelet calls /ready every few seconds, and while a dependency
# is down Django would log each 503 at ERROR. Readiness changes are logged here instead, once.
QUIET_PROBES = frozenset(PROBE_PATHS)
READINESS_PATH = "/ready"

logger = structlog.get_logger("apps.observability.probes")


class ReadinessLog:
    """Logs readiness when it changes in this process, not on every probe.

    WARNING when /ready starts failing or fails differently (other checks, other messages),
    INFO when it drains after SIGTERM and when it is ready again after failing.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._last = None

    def observe(self, response):
        if response.status_code < 500:
            with self._lock:
                previous, self._last = self._last, None
            if previous is not None:
                logger.info("readiness_restored", previous_status=previous[0])
            return
        try:
            body = json.loads(response.content)
            status = body["status"]
            failing = {
                name: check["message"]
                for name, check in body["checks"].items()
                if check["status"] == "failing"
            }
        except (ValueError, KeyError, TypeError, AttributeError):
            status, failing = f"http {response.status_code}", {}
        state = (status, tuple(sorted(failing.items())))
        with self._lock:
            changed, self._last = state != self._last, state
        if changed:
            level = logging.INFO if status == "draining" else logging.WARNING
            logger.log(level, "readiness_failing", status=status, failing_checks=failing)


readiness_log = ReadinessLog()


class ProbeMiddleware:
    """Answers orchestrator probes before host validation, sessions and per-request work.

    The kubelet calls probes with the pod IP as Host, which ALLOWED_HOSTS rightly rejects for
    everything else, and probes must not open a session or count as traffic.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info.rstrip("/")
        probe = PROBES.get(path)
        if probe is None:
            return self.get_response(request)
        response = probe(request)
        if path in QUIET_PROBES:
            request.is_quiet_probe = True
            if path == READINESS_PATH:
                readiness_log.observe(response)
        return response
