"""Request statistics summed in SQL: the figures of /stats and of the ops dashboards.

Read from RequestMinute (or its RequestQuarterHour rollup), which each process's flusher writes
every TELEMETRY_FLUSH_SECONDS and when it exits: the figures lag live traffic by up to that long.
`request_statistics` (/stats) runs two queries whatever the window: one grouped by route and
method (totals and the route table), one grouped by minute.
"""

import datetime as dt

from django.db.models import BigIntegerField, Func, Max, Sum
from django.utils import timezone

from apps.observability.telemetry.models import RequestMinute
from apps.observability.telemetry.rows import BUCKET_FIELDS, percentile_from_buckets

STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")
SUMMED_FIELDS = (
    "requests",
    *(f"status_{status_class}" for status_class in STATUS_CLASSES),
    "slow",
    "duration_sum_ms",
    "query_count",
    "db_time_ms",
    *BUCKET_FIELDS,
)


def aggregates():
    """Sums (and the maximum) of every RequestMinute counter, for .annotate() or .aggregate()."""
    return {
        **{name: Sum(name) for name in SUMMED_FIELDS},
        "duration_max_ms": Max("duration_max_ms"),
    }


def ratio(numerator, denominator, digits=4):
    """numerator / denominator rounded, 0.0 when there is nothing to divide by (no requests)."""
    return round(numerator / denominator, digits) if denominator else 0.0


def percent(part, whole, digits=1):
    """100 * part / whole rounded, None when `whole` is 0 (nothing to say, not 0 %)."""
    part, whole = part or 0, whole or 0
    return round(100 * part / whole, digits) if whole else None


def summarize(values):
    """Counts, rates and latency of one group of summed rows."""
    requests = values["requests"] or 0
    buckets = [values[name] or 0 for name in BUCKET_FIELDS]
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
        "error_rate": ratio(errors, requests),
        "slow_rate": ratio(slow, requests),
        "latency_ms": {
            "avg": round(values["duration_sum_ms"] / requests, 2) if requests else None,
            "p50": percentile_from_buckets(buckets, 0.50, maximum),
            "p95": percentile_from_buckets(buckets, 0.95, maximum),
            "p99": percentile_from_buckets(buckets, 0.99, maximum),
            "max": round(maximum, 2) if maximum is not None else None,
        },
        "queries": {
            "total": values["query_count"] or 0,
            "per_request": ratio(values["query_count"] or 0, requests, 2),
            "db_time_ms_avg": round(values["db_time_ms"] / requests, 2) if requests else None,
        },
    }


def sum_groups(groups):
    """One group adding up several groups of aggregates() (the maximum of their maxima)."""
    totals = {name: sum(group[name] or 0 for group in groups) for name in SUMMED_FIELDS}
    maxima = [group["duration_max_ms"] for group in groups if group["duration_max_ms"] is not None]
    totals["duration_max_ms"] = max(maxima) if maxima else None
    return totals


def route_summary(group):
    """One route's line of /stats, from its group of summed rows (route, method, aggregates)."""
    summary = summarize(group)
    return {
        "route": group["route"],
        "method": group["method"],
        "requests": summary["requests"],
        "errors": summary["errors"],
        "error_rate": summary["error_rate"],
        "slow": summary["slow"],
        "p95_ms": summary["latency_ms"]["p95"],
        "avg_ms": summary["latency_ms"]["avg"],
    }


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
    routes = [route_summary(group) for group in groups]
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


class BucketStart(Func):
    """Start of the time bucket holding a datetime column, in seconds since the epoch (UTC)."""

    output_field = BigIntegerField()

    def __init__(self, expression, seconds):
        self.seconds = int(seconds)
        super().__init__(expression)

    def as_sql(self, compiler, connection, **extra_context):
        raise NotImplementedError(f"BucketStart is not implemented for {connection.vendor}")

    def as_sqlite(self, compiler, connection, **extra_context):
        # Django stores datetimes as UTC text; strftime('%s') reads it as seconds since the epoch.
        return super().as_sql(
            compiler,
            connection,
            template=(
                f"((CAST(strftime('%%%%s', %(expressions)s) AS INTEGER) / {self.seconds})"
                f" * {self.seconds})"
            ),
            **extra_context,
        )

    def as_postgresql(self, compiler, connection, **extra_context):
        return super().as_sql(
            compiler,
            connection,
            template=(
                f"(CAST(FLOOR(EXTRACT(EPOCH FROM %(expressions)s) / {self.seconds}) AS BIGINT)"
                f" * {self.seconds})"
            ),
            **extra_context,
        )
