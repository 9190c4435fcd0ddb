"""Settings: Django's deployment checks, DEBUG, and whether retention pruning keeps up."""

import datetime as dt

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.db.models import Count, Min

from apps.audit.report import CRITICAL, INFO, WARNING, Finding
from apps.common.flusher import PRUNE_INTERVAL_SECONDS
from apps.observability.telemetry.models import RequestMinute, SlowRequest
from apps.profiling.models import QueryFinding

# Pruning runs at most once an hour in each serving process; two intervals of slack.
PRUNE_SLACK = dt.timedelta(seconds=2 * PRUNE_INTERVAL_SECONDS)
SILK_SLACK = 1.1


def _check_messages():
    messages = checks.run_checks(include_deployment_checks=True)
    return [message for message in messages if not message.is_silenced()]


def settings_checks(scope):
    findings = []
    if settings.DEBUG:
        findings.append(
            Finding(
                "settings:debug",
                CRITICAL if settings.IS_PRODUCTION else WARNING,
                "DEBUG is on",
                f"DJANGO_DEBUG is true with DJANGO_ENV={settings.DJANGO_ENV}: error pages show "
                "settings and code, and every query is kept in memory.",
                "Deploy with DJANGO_ENV=production (DEBUG off).",
                {"environment": settings.DJANGO_ENV},
            )
        )
    else:
        findings.append(
            Finding(
                "settings:debug",
                INFO,
                "DEBUG is off",
                f"DJANGO_DEBUG is false (DJANGO_ENV={settings.DJANGO_ENV}).",
            )
        )
    messages = _check_messages()
    for message in messages:
        severity = CRITICAL if message.level >= checks.ERROR else WARNING
        if message.level < checks.WARNING:
            severity = INFO
        findings.append(
            Finding(
                f"check:{message.id}",
                severity,
                f"manage.py check --deploy: {message.id}",
                message.msg.strip(),
                (message.hint or "").strip() or message.msg.strip().split(". ")[0],
                {"level": message.level},
            )
        )
    if not messages:
        findings.append(
            Finding(
                "check:deploy",
                INFO,
                "manage.py check --deploy reports nothing",
                "Every system and deployment check passes (none silenced here).",
            )
        )
    return findings


def _oldest(model, field):
    return model.objects.aggregate(oldest=Min(field))["oldest"]


def _age_text(age):
    return f"{age.total_seconds() / 86400:.1f} days"


def retention(scope):
    days = settings.TELEMETRY_RETENTION_DAYS
    allowed = dt.timedelta(days=days) + PRUNE_SLACK
    findings = []
    for label, model, field in (
        ("request statistics", RequestMinute, "minute"),
        ("slow requests", SlowRequest, "started_at"),
        ("query findings", QueryFinding, "last_seen"),
    ):
        oldest = _oldest(model, field)
        identifier = f"retention:{model._meta.model_name}"
        if oldest is None:
            findings.append(
                Finding(identifier, INFO, f"No {label} stored yet", f"{label}: no rows.")
            )
            continue
        age = scope.now - oldest
        data = {"oldest": oldest.isoformat(), "age_days": round(age.total_seconds() / 86400, 2)}
        late = age > allowed
        findings.append(
            Finding(
                identifier,
                WARNING if late else INFO,
                f"The oldest {label} are {'past' if late else 'within'} the retention",
                f"Oldest {label} from {oldest:%Y-%m-%d %H:%M} UTC, {_age_text(age)} old; "
                f"TELEMETRY_RETENTION_DAYS {days} (+ {PRUNE_SLACK.total_seconds() / 3600:g} h "
                "for the hourly pruning).",
                "Pruning is not running: run manage.py prune_telemetry on a schedule (the web "
                "processes prune only while they serve)."
                if late
                else "",
                data,
            )
        )
    findings.append(_silk_retention(scope))
    return findings


def _silk_retention(scope):
    if not apps.is_installed("silk"):
        return Finding(
            "retention:silk",
            INFO,
            "silk is not installed",
            "SILK_ENABLED is off: no recorded requests to keep.",
        )
    from silk.models import Request

    figures = Request.objects.aggregate(count=Count("id"), oldest=Min("start_time"))
    keep = settings.SILKY_MAX_RECORDED_REQUESTS
    count = figures["count"]
    oldest = figures["oldest"]
    age = f", the oldest {_age_text(scope.now - oldest)} old" if oldest else ""
    over = count > keep * SILK_SLACK
    return Finding(
        "retention:silk",
        WARNING if over else INFO,
        f"silk keeps {'more than' if over else 'at most'} its recorded requests",
        f"{count} silk requests recorded{age}; SILKY_MAX_RECORDED_REQUESTS {keep}.",
        "Run manage.py prune_silk on a schedule (deploy/k8s/prune-silk-cronjob.yaml)."
        if over
        else "",
        {"count": count, "keep": keep},
    )
