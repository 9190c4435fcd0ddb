"""The service's own paths: probes, the metrics scrape, ops JSON, static files and silk's pages.

Requests to them come from orchestrators, scrapers and staff, not from the service's users: they
are never counted in the request statistics, traced by Sentry, recorded by silk or sampled by the
query inspector. This is the one list; everything that leaves them out asks `is_ops_path`.
"""

# Answered before the session middleware (apps/observability/health/middleware.py).
PROBE_PATHS = ("/health", "/ready")
# Reached over plain HTTP from inside the cluster (probes, the scrape, external monitors): exempt
# from the HTTPS redirect.
CLUSTER_PATHS = (*PROBE_PATHS, "/health-detailed", "/metrics")
OPS_PATHS = (*CLUSTER_PATHS, "/stats")
# settings.STATIC_URL, and silk's UI (mounted at /silk/ when SILK_ENABLED).
OPS_PREFIXES = ("/static/", "/silk/")

_OPS_PATHS = frozenset(OPS_PATHS)


def is_ops_path(path):
    """True for a path of OPS_PATHS (with or without a trailing slash) or under OPS_PREFIXES."""
    return path.rstrip("/") in _OPS_PATHS or path.startswith(OPS_PREFIXES)
