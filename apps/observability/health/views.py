"""The probes: liveness (/health), readiness (/ready) and the detailed report (/health-detailed)."""

import os

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from apps.observability.authorization import ops_viewer_or_token_required
from apps.observability.health import checks as health
from apps.observability.health import draining
from apps.observability.health.process import process_information, uptime_seconds


@never_cache
@require_safe
def liveness(request):
    """Liveness: no dependency is checked; answering at all is the signal."""
    return JsonResponse(
        {
            "status": "ok",
            "pid": os.getpid(),
            "uptime_seconds": uptime_seconds(),
        }
    )


@never_cache
@require_safe
def readiness(request):
    """Readiness: 503 while a required dependency fails or this worker drains after SIGTERM.

    An optional dependency (cache, read replica) that is down makes the answer "degraded" but
    still 200: the service works without it.
    """
    if draining.is_draining():
        return JsonResponse(
            {
                "status": "draining",
                "checks": {
                    "draining": {
                        "status": health.FAILING,
                        "message": "shutting down after SIGTERM; finishing requests in flight",
                        "time_ms": 0.0,
                    }
                },
            },
            status=503,
        )
    results = health.run_checks(health.readiness_checks())
    status = health.overall_status(results)
    return JsonResponse(
        {
            "status": status,
            "checks": {result.name: result.as_json() for result in results},
        },
        status=503 if status == health.FAILING else 200,
    )


@never_cache
@require_safe
@ops_viewer_or_token_required
def health_detailed(request):
    """Every check with details, pool statistics, versions and process information.

    The status code follows readiness (503 when a required dependency fails) so that external
    monitors can alert on it; warnings and degraded optional dependencies answer 200.
    """
    results = health.run_checks(health.detailed_checks())
    status = health.overall_status(results)
    return JsonResponse(
        {
            "status": status,
            "draining": draining.is_draining(),
            "checks": {result.name: result.as_json(with_details=True) for result in results},
            "process": process_information(),
        },
        status=503 if status == health.FAILING else 200,
    )
