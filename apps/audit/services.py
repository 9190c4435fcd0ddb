"""Running the audit, recording its result, and pruning old runs."""

import datetime as dt
import json
import logging
import time

from django.conf import settings
from django.db import router
from django.utils import timezone

from apps.audit import database, rendering
from apps.audit.checks import CHECKS
from apps.audit.models import AuditRun
from apps.audit.report import WARNING, Finding, Report, Scope, decide
from apps.common.database import delete_older_than

logger = logging.getLogger(__name__)


class AuditCannotRun(Exception):
    """What the audit needs could not be reached; the message names it."""


def ensure_reachable():
    """The primary database answers, or AuditCannotRun naming it."""
    try:
        database.fetch("SELECT 1")
    except Exception as error:  # any driver or pool error means the same here
        raise AuditCannotRun(
            f"the database is unreachable: {database.describe()} "
            f"({type(error).__name__}: {str(error).strip() or 'no detail'})"
        ) from error


def _run_check(section, check, scope):
    try:
        findings = check(scope)
    except Exception as error:
        # One check failing (a privilege, a catalogue difference) is a finding, not the end.
        logger.warning("scaling audit check %s failed", check.__name__, exc_info=True)
        findings = [
            Finding(
                f"audit:{check.__name__}",
                WARNING,
                f"The check {check.__name__} could not run",
                f"{type(error).__name__}: {str(error).strip()}",
                "Look at the service's log for the traceback.",
            )
        ]
    for finding in findings:
        finding.section = section
    return findings


def run_audit(minutes, instances, fail_on, now=None, checks=CHECKS):
    """Run every check against the live deployment and decide the gate."""
    started = time.monotonic()
    ensure_reachable()
    scope = Scope(minutes, instances, fail_on, now or timezone.now())
    findings = [
        finding for section, check in checks for finding in _run_check(section, check, scope)
    ]
    deployment = deployment_summary()
    gate = decide(findings, fail_on)
    duration_ms = round((time.monotonic() - started) * 1000, 1)
    return Report(scope, deployment, findings, gate, duration_ms)


def deployment_summary():
    return {
        "environment": settings.DJANGO_ENV,
        "release": settings.GIT_SHA,
        "database": database.describe(),
        "replicas": [alias for alias in settings.DATABASES if alias.startswith("replica_")],
        "cache": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1],
        "workers": settings.WEB_CONCURRENCY,
        "threads": settings.GUNICORN_THREADS,
    }


def record_run(report):
    counts = report.counts()
    return AuditRun.objects.create(
        started_at=report.scope.now,
        duration_ms=report.duration_ms,
        passed=report.gate.passed,
        fail_on=report.gate.fail_on,
        window_minutes=report.scope.minutes,
        instances=report.scope.instances,
        critical=counts["critical"],
        warnings=counts["warning"],
        # Through the JSON the command writes: every figure in a form jsonb stores.
        report=json.loads(rendering.as_json(report)),
    )


def prune_runs(retention_days, batch_size):
    """The flusher's prune job: runs older than the telemetry retention go."""
    cutoff = timezone.now() - dt.timedelta(days=retention_days)
    rows = AuditRun.objects.using(router.db_for_write(AuditRun))
    return {"auditrun": delete_older_than(rows, "started_at", cutoff, batch_size)}
