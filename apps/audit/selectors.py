from apps.audit.models import AuditRun


def last_run():
    """The newest recorded audit run, or None."""
    return (
        AuditRun.objects.order_by("-started_at")
        .only("started_at", "passed", "fail_on", "critical", "warnings", "duration_ms")
        .first()
    )
