"""/stats: request statistics of the last minutes, summed over every process, as JSON.

Read from RequestMinute, which each process's flusher writes every TELEMETRY_FLUSH_SECONDS and
when it exits: the figures lag live traffic by up to that long. Two queries whatever the window:
one grouped by route and method (totals and the route table), one grouped by minute.
"""

import datetime as dt
import os
import time

from django.db.models import Max, Sum
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from apps.observability.authorization import staff_or_token_required
from apps.observability.health import checks as health
from apps.observability.metrics import registry as metrics
from apps.observability.telemetry import aggregation as telemetry
from apps.observability.telemetry.models import RequestMinute

DEFAULT_MINUTES = 60
MAX_MINUTES = 1440
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")
SUMMED_FIELDS = (
    "requests",
    *(f"status_{status_class}" for status_class in STATUS_CLASSES),
    "slow",
    "duration_sum_ms",
    "query_count",
    "db_time_ms",
    *telemetry.BUCKET_FIELDS,
)


class BadParameter(ValueError):
    pass


def parse_minutes(value):
    if value is None:
        return DEFAULT_MINUTES
    try:
        minutes = int(value)
    except ValueError:
        raise BadParameter(f"minutes: {value!r} is not a whole number") from None
    if not 1 <= minutes <= MAX_MINUTES:
        raise BadParameter(f"minutes: must be between 1 and {MAX_MINUTES}, got {minutes}")
    return minutes


def aggregates():
    """Sums (and the maximum) of every RequestMinute counter, for .annotate() or .aggregate()."""
    return {
        **{name: Sum(name) for name in SUMMED_FIELDS},
        "duration_max_ms": Max("duration_max_ms"),
    }


def _ratio(numerator, denominator, digits=4):
    return round(numerator / denominator, digits) if denominator else 0.0


def summarize(values):
    """Counts, rates and latency of one group of summed rows."""
    requests = values["requests"] or 0
    buckets = [values[name] or 0 for name in telemetry.BUCKET_FIELDS]
    maximum = values["duration_max_ms"]
    errors = values["status_5xx"] or 0
    slow = values["slow"] or 0
    return {
        "requests": requests,
        "status": {
            status_class: values[f"status_{status_class}"] or 0 for status_class in STATUS_CLASSES
        },
        "errors": errors,
        "slow": slow,
        "error_rate": _ratio(errors, requests),
        "slow_rate": _ratio(slow, requests),
        "latency_ms": {
            "avg": round(values["duration_sum_ms"] / requests, 2) if requests else None,
            "p50": telemetry.percentile_from_buckets(buckets, 0.50, maximum),
            "p95": telemetry.percentile_from_buckets(buckets, 0.95, maximum),
            "p99": telemetry.percentile_from_buckets(buckets, 0.99, maximum),
            "max": round(maximum, 2) if maximum is not None else None,
        },
        "queries": {
            "total": values["query_count"] or 0,
            "per_request": _ratio(values["query_count"] or 0, requests, 2),
            "db_time_ms_avg": round(values["db_time_ms"] / requests, 2) if requests else None,
        },
    }


def sum_groups(groups):
    """One group adding up several groups of aggregates() (the maximum of their maxima)."""
    totals = {name: sum(group[name] or 0 for group in groups) for name in SUMMED_FIELDS}
    maxima = [group["duration_max_ms"] for group in groups if group["duration_max_ms"] is not None]
    totals["duration_max_ms"] = max(maxima) if maxima else None
    return totals


def request_statistics(minutes, now=None):
    """The /stats figures over the last `minutes` minutes (the current one included)."""
    now = timezone.now() if now is None else now
    until = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    since = until - dt.timedelta(minutes=minutes)
    window = RequestMinute.objects.filter(minute__gte=since, minute__lt=until)
    groups = list(
        window.order_by().values("route", "method").annotate(**aggregates()).order_by("route")
    )
    by_minute = window.order_by().values("minute").annotate(**aggregates()).order_by("minute")
    routes = []
    for group in groups:
        summary = summarize(group)
        routes.append(
            {
                "route": group["route"],
                "method": group["method"],
                "requests": summary["requests"],
                "errors": summary["errors"],
                "error_rate": summary["error_rate"],
                "slow": summary["slow"],
                "p95_ms": summary["latency_ms"]["p95"],
                "avg_ms": summary["latency_ms"]["avg"],
            }
        )
    routes.sort(key=lambda route: (-route["requests"], route["route"], route["method"]))
    per_minute = []
    for group in by_minute:
        summary = summarize(group)
        per_minute.append(
            {
                "minute": group["minute"].isoformat(),
                "requests": summary["requests"],
                "status": summary["status"],
                "errors": summary["errors"],
                "slow": summary["slow"],
                "avg_ms": summary["latency_ms"]["avg"],
                "p95_ms": summary["latency_ms"]["p95"],
            }
        )
    return {
        "window": {"minutes": minutes, "from": since.isoformat(), "until": until.isoformat()},
        **summarize(sum_groups(groups)),
        "routes": routes,
        "per_minute": per_minute,
    }


def process_information():
    return {
        "pid": os.getpid(),
        "uptime_seconds": round(time.monotonic() - health.PROCESS_STARTED, 1),
        "database_pools": metrics.pool_statistics(),
    }


@never_cache
@require_safe
@staff_or_token_required
def stats_view(request):
    try:
        minutes = parse_minutes(request.GET.get("minutes"))
    except BadParameter as error:
        return JsonResponse({"error": "bad_request", "detail": str(error)}, status=400)
    return JsonResponse({**request_statistics(minutes), "process": process_information()})
