"""Each /ready check, run in this process as the probe runs it."""

from apps.audit.report import CRITICAL, INFO, WARNING, Finding
from apps.observability.health import checks as health

SEVERITY = {
    health.FAILING: CRITICAL,
    health.DEGRADED: WARNING,
    health.WARNING: WARNING,
    health.OK: INFO,
}


def readiness(scope):
    return [
        Finding(
            f"ready:{result.name}",
            SEVERITY[result.status],
            f"/ready check {result.name}: {result.status}",
            f"{result.message} ({result.time_ms} ms).",
            ""
            if result.status == health.OK
            else "/health-detailed shows the details; readiness fails while a required "
            "check fails.",
            {"status": result.status, "time_ms": result.time_ms},
        )
        for result in health.run_checks(health.readiness_checks())
    ]
