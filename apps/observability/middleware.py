from apps.observability import metrics, views

PROBES = {
    "/health": views.liveness,
    "/ready": views.readiness,
    # Prometheus scrapes the pod IP too; the view checks the token (or a staff session) itself.
    "/metrics": metrics.metrics_view,
}


class ProbeMiddleware:
    """Answers orchestrator probes before host validation, sessions and per-request work.

    The kubelet calls probes with the pod IP as Host, which ALLOWED_HOSTS rightly rejects for
    everything else, and probes must not open a session or count as traffic.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        probe = PROBES.get(request.path_info.rstrip("/"))
        if probe is not None:
            return probe(request)
        return self.get_response(request)
