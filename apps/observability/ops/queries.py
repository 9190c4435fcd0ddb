"""The aggregating queries behind the ops dashboards (/admin/ops/).

Every figure is a GROUP BY over RequestMinute, or over its 15-minute rollup RequestQuarterHour
for the windows whose buckets are whole quarter hours (24 h and 7 d: 15 times fewer rows to read),
so a page runs the same number of queries whatever the number of routes and minutes. Both tables
hold the same sums (the flusher writes them in one transaction) and a window's bounds are whole
buckets, so the figures are the same whichever is read. A chart's time buckets (1 minute up to
1 hour, chosen by the window) are computed in SQL from the period column, the same on PostgreSQL
and SQLite; each bucket's percentiles come from its summed latency histogram, with the /stats
functions (`stats.aggregates`, `stats.summarize`).

One query reads the window and the window before it, grouped by bucket: the buckets of the
window are the time series, their sum the totals, and the sum of the earlier buckets the totals
to compare with.
"""

import contextlib
import datetime as dt
import math
from dataclasses import dataclass, field

from django.db import connections, router, transaction
from django.db.models import Sum
from django.utils import timezone

from apps.api.errors import BadParameter
from apps.observability.telemetry.models import (
    ErrorGroup,
    RequestMinute,
    RequestQuarterHour,
    SlowRequest,
)
from apps.observability.telemetry.rows import QUARTER_HOUR_SECONDS
from apps.observability.telemetry.statistics import BucketStart, aggregates, sum_groups, summarize
from apps.profiling.models import QueryFinding

NEWEST_LIMIT = 10
# PostgreSQL settings for the aggregations of one page, measured on 14 days of minutes for 50
# routes (bench/ops_overview.py): JIT compilation took longer (about 1 s) than the query it
# compiled, and at the default work_mem the grouping of wide rows sorted on disk.
ANALYTIC_SETTINGS = {"jit": "off", "work_mem": "64MB"}


@contextlib.contextmanager
def analytic_transaction():
    """A transaction whose PostgreSQL settings suit these aggregations (set for it alone)."""
    alias = router.db_for_read(RequestMinute)
    connection = connections[alias]
    with transaction.atomic(using=alias):
        if connection.vendor == "postgresql":
            assignments = ", ".join(["set_config(%s, %s, true)"] * len(ANALYTIC_SETTINGS))
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT {assignments}",
                    [value for item in ANALYTIC_SETTINGS.items() for value in item],
                )
        yield


@dataclass(frozen=True)
class Window:
    key: str
    label: str
    duration: dt.timedelta
    bucket: dt.timedelta

    @property
    def bucket_seconds(self):
        return int(self.bucket.total_seconds())

    @property
    def bucket_minutes(self):
        return self.bucket_seconds // 60

    @property
    def bucket_label(self):
        minutes = self.bucket_minutes
        return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h"

    @property
    def statistics_model(self):
        """The rollup when every bucket (and so the window's bounds) is whole quarter hours."""
        if self.bucket_seconds % QUARTER_HOUR_SECONDS == 0:
            return RequestQuarterHour
        return RequestMinute


# 6 h draws 15-minute buckets (24 points) so that it reads the rollup too: 15 times fewer rows
# than the minutes, which made it the slowest window after 7 d.
WINDOWS = {
    window.key: window
    for window in (
        Window("15m", "15 min", dt.timedelta(minutes=15), dt.timedelta(minutes=1)),
        Window("1h", "1 h", dt.timedelta(hours=1), dt.timedelta(minutes=1)),
        Window("6h", "6 h", dt.timedelta(hours=6), dt.timedelta(minutes=15)),
        Window("24h", "24 h", dt.timedelta(hours=24), dt.timedelta(minutes=15)),
        Window("7d", "7 d", dt.timedelta(days=7), dt.timedelta(hours=1)),
    )
}
DEFAULT_WINDOW = "1h"


def parse_window(value):
    if not value:
        return WINDOWS[DEFAULT_WINDOW]
    try:
        return WINDOWS[value]
    except KeyError:
        raise BadParameter(f"window: {value!r} is not one of {', '.join(WINDOWS)}") from None


@dataclass(frozen=True)
class Span:
    """The window ending with the bucket that holds `now`, and the window before it."""

    window: Window
    since: dt.datetime
    until: dt.datetime

    @classmethod
    def ending_at(cls, window, now=None):
        now = timezone.now() if now is None else now
        seconds = window.bucket_seconds
        end = (math.floor(now.timestamp() / seconds) + 1) * seconds
        until = dt.datetime.fromtimestamp(end, tz=dt.UTC)
        return cls(window, until - window.duration, until)

    @property
    def previous_since(self):
        return self.since - self.window.duration

    def bucket_starts(self):
        step = self.window.bucket
        count = int(self.window.duration / step)
        return [self.since + step * index for index in range(count)]


@dataclass
class Point:
    start: dt.datetime
    summary: dict | None  # stats.summarize() of the bucket; None when it saw no request


@dataclass
class Timeline:
    """Per-bucket figures of a span, its totals and the totals of the window before it."""

    span: Span
    points: list
    totals: dict
    previous: dict
    changes: dict = field(default_factory=dict)

    @property
    def has_requests(self):
        return self.totals["requests"] > 0


def _change(current, previous):
    """Relative change in percent, None when there is nothing to compare with."""
    if current is None or not previous:
        return None
    return round(100 * (current - previous) / previous, 1)


def _changes(totals, previous):
    return {
        "requests": _change(totals["requests"], previous["requests"]),
        "p95": _change(totals["latency_ms"]["p95"], previous["latency_ms"]["p95"]),
        # Rates change in percentage points.
        "error_rate": round(100 * (totals["error_rate"] - previous["error_rate"]), 2),
        "slow_rate": round(100 * (totals["slow_rate"] - previous["slow_rate"]), 2),
    }


def _statistics(span, since):
    """The rows of the window's statistics model from `since` to the end of the span, and the
    name of their period column."""
    model = span.window.statistics_model
    period = model.PERIOD_FIELD
    rows = model.objects.filter(**{f"{period}__gte": since, f"{period}__lt": span.until})
    return rows.order_by(), period


def timeline(span, route=None, method=None):
    """One query: the span and the window before it, summed per time bucket."""
    rows, period = _statistics(span, span.previous_since)
    if route is not None:
        rows = rows.filter(route=route)
    if method:
        rows = rows.filter(method=method)
    groups = rows.values(bucket=BucketStart(period, span.window.bucket_seconds)).annotate(
        **aggregates()
    )
    since = span.since.timestamp()
    current, earlier = {}, []
    for group in groups:
        if group["bucket"] >= since:
            current[group["bucket"]] = group
        else:
            earlier.append(group)
    points = []
    for start in span.bucket_starts():
        group = current.get(int(start.timestamp()))
        points.append(Point(start, summarize(group) if group is not None else None))
    totals = summarize(sum_groups(list(current.values())))
    previous = summarize(sum_groups(earlier))
    return Timeline(span, points, totals, previous, _changes(totals, previous))


def route_table(span, with_sparklines=True):
    """Every route and method seen in the span with its figures and requests per bucket.

    Two queries: the totals per route and method, and their requests per bucket (sparklines).
    """
    rows, period = _statistics(span, span.since)
    groups = rows.values("route", "method").annotate(**aggregates())
    per_bucket = (
        rows.values(
            "route", "method", bucket=BucketStart(period, span.window.bucket_seconds)
        ).annotate(bucket_requests=Sum("requests"))
        if with_sparklines
        else []
    )
    minutes = span.window.duration.total_seconds() / 60
    starts = [int(start.timestamp()) for start in span.bucket_starts()]
    position = {start: index for index, start in enumerate(starts)}
    sparklines = {}
    for group in per_bucket:
        line = sparklines.setdefault((group["route"], group["method"]), [0] * len(starts))
        index = position.get(group["bucket"])
        if index is not None:
            line[index] = group["bucket_requests"] or 0
    table = []
    for group in groups:
        summary = summarize(group)
        key = (group["route"], group["method"])
        table.append(
            {
                "route": group["route"],
                "method": group["method"],
                "requests": summary["requests"],
                "per_minute": round(summary["requests"] / minutes, 2),
                "p50": summary["latency_ms"]["p50"],
                "p95": summary["latency_ms"]["p95"],
                "avg": summary["latency_ms"]["avg"],
                "errors": summary["errors"],
                "error_rate": summary["error_rate"],
                "error_rate_percent": round(100 * summary["error_rate"], 2),
                "slow": summary["slow"],
                "queries_per_request": summary["queries"]["per_request"],
                "sparkline": sparklines.get(key, [0] * len(starts)),
            }
        )
    return table


SORT_KEYS = {
    "route": lambda row: (row["route"], row["method"]),
    "requests": lambda row: row["requests"],
    "p95": lambda row: row["p95"] if row["p95"] is not None else -1.0,
    "error_rate": lambda row: row["error_rate"],
    "slow": lambda row: row["slow"],
}
DEFAULT_SORT = "-requests"


def parse_sort(value):
    value = value or DEFAULT_SORT
    if value.lstrip("-") not in SORT_KEYS:
        raise BadParameter(
            f"sort: {value!r} is not one of {', '.join(SORT_KEYS)} (prefix - for descending)"
        )
    return value


def sort_routes(table, sort):
    key = SORT_KEYS[sort.lstrip("-")]
    # Ties keep a stable, readable order: by route, then method.
    ordered = sorted(table, key=lambda row: (row["route"], row["method"]))
    return sorted(ordered, key=key, reverse=sort.startswith("-"))


def busiest_routes(span, limit=NEWEST_LIMIT):
    """The routes with the most requests in the span (one query)."""
    return sort_routes(route_table(span, with_sparklines=False), DEFAULT_SORT)[:limit]


def newest_slow_requests(since, route=None, method=None, limit=NEWEST_LIMIT):
    rows = SlowRequest.objects.filter(started_at__gte=since)
    if route is not None:
        rows = rows.filter(route=route)
    if method:
        rows = rows.filter(method=method)
    return list(rows.order_by("-started_at")[:limit])


def newest_error_groups(since, route=None, limit=NEWEST_LIMIT):
    rows = ErrorGroup.objects.filter(last_seen__gte=since)
    if route is not None:
        rows = rows.filter(route=route)
    return list(rows.order_by("-last_seen")[:limit])


def newest_findings(since, source=None, limit=NEWEST_LIMIT):
    rows = QueryFinding.objects.filter(last_seen__gte=since)
    if source is not None:
        rows = rows.filter(source=source)
    return list(rows.order_by("-last_seen")[:limit])
