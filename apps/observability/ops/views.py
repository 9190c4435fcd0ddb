"""Ops dashboards inside the admin (/admin/ops/): overview, routes, one route, database.

Staff holding observability.view_ops only, through the admin's own `admin_view` (anonymous
visitors go to the admin login) with the admin's look and navigation (`each_context`); any other
signed-in user is refused with 403. Every page runs a fixed number of aggregating queries
(ops/queries.py, ops/database_report.py), whatever the number of routes or rows. Charts are
server-rendered SVG (ops/charts.py): no CDN, no script.

Before reading, a page writes this process's telemetry buffer (what every flusher does every
TELEMETRY_FLUSH_SECONDS), so the requests this worker has just served are on it; other
processes' requests appear once their flusher has run.
"""

import dataclasses
import functools
from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from apps.api.errors import BadParameter
from apps.common import units
from apps.common.database import all_pool_statistics
from apps.common.ops_access import OPS_PERMISSION, may_view_ops
from apps.observability.health import checks as health
from apps.observability.metrics import registry as metrics
from apps.observability.ops import charts, database_report
from apps.observability.ops import queries as ops_queries
from apps.observability.telemetry import aggregation as telemetry
from apps.observability.telemetry.statistics import STATUS_CLASSES, percent

REFRESH_CHOICES = (0, 30, 60, 300)
TIME_FORMATS = {
    "15m": "%H:%M",
    "1h": "%H:%M",
    "6h": "%H:%M",
    "24h": "%a %H:%M",
    "7d": "%a %d %H:%M",
}
CACHE_COUNTERS = {
    "django_cache_get": "gets",
    "django_cache_get_hits": "hits",
    "django_cache_get_misses": "misses",
    "django_cache_get_fail": "failures",
}


def staff_page(view):
    """admin_view (login redirect for anonymous visitors, never_cache, CSRF) plus 403 for
    signed-in users who may not view ops (apps/common/ops_access.py), rather than the login form
    again."""
    protected = admin.site.admin_view(view)

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        user = request.user
        if user.is_authenticated and not may_view_ops(user):
            raise PermissionDenied(f"The ops dashboards need the {OPS_PERMISSION} permission.")
        return protected(request, *args, **kwargs)

    return wrapper


def _reverse_or_none(name, *args):
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def _query(**parameters):
    return "?" + urlencode({name: value for name, value in parameters.items() if value})


def _parse_refresh(value):
    if not value:
        return 0
    try:
        seconds = int(value)
    except ValueError:
        raise BadParameter(f"refresh: {value!r} is not a whole number of seconds") from None
    if seconds not in REFRESH_CHOICES:
        choices = ", ".join(str(choice) for choice in REFRESH_CHOICES)
        raise BadParameter(f"refresh: must be one of {choices}, got {seconds}")
    return seconds


def _links():
    """Admin pages and silk, where they exist."""
    return {
        "request_minutes": reverse("admin:observability_requestminute_changelist"),
        "slow_requests": reverse("admin:observability_slowrequest_changelist"),
        "error_groups": reverse("admin:observability_errorgroup_changelist"),
        "findings": _reverse_or_none("admin:profiling_queryfinding_changelist"),
        "silk": _reverse_or_none("silk:summary") if settings.SILK_ENABLED else None,
        "audit": _reverse_or_none("audit:report"),
    }


def _page(request, template, title, context, status=200, window=None, refresh=0, **query):
    """The admin context plus what every ops page shows: nav, window and refresh pickers."""
    window = window or ops_queries.WINDOWS[ops_queries.DEFAULT_WINDOW]
    path = request.path
    context = {
        **admin.site.each_context(request),
        "title": title,
        "window": window,
        "refresh": refresh,
        "time_zone_name": timezone.get_current_timezone_name(),
        "flush_interval": flush_interval_text(),
        "slow_ms": settings.LOG_SLOW_REQUEST_MS,
        "links": _links(),
        "window_choices": [
            {
                "label": choice.label,
                "url": path + _query(window=choice.key, refresh=refresh, **query),
                "current": choice.key == window.key,
            }
            for choice in ops_queries.WINDOWS.values()
        ],
        "refresh_choices": [
            {
                "label": f"{seconds} s" if seconds else "off",
                "url": path + _query(window=window.key, refresh=seconds, **query),
                "current": seconds == refresh,
            }
            for seconds in REFRESH_CHOICES
        ],
        "window_query": _query(window=window.key, refresh=refresh),
        "no_traffic_message": _no_traffic_message(window),
        **context,
    }
    return TemplateResponse(request, template, context, status=status)


def _bad_request(request, error):
    return _page(request, "ops/bad_request.html", "Bad request", {"error": str(error)}, status=400)


def ops_page(template, parameters=None):
    """A staff ops page drawn with `template`. The query string's window and refresh, then what
    `parameters` reads from it (a dict by name, kept in the window and refresh links), are passed
    to the view, which returns the page's title and context; a bad parameter answers 400."""

    def decorate(view):
        @staff_page
        @functools.wraps(view)
        def page(request):
            try:
                _refuse_nul_characters(request.GET)
                window = ops_queries.parse_window(request.GET.get("window"))
                refresh = _parse_refresh(request.GET.get("refresh"))
                query = parameters(request.GET) if parameters else {}
            except BadParameter as error:
                return _bad_request(request, error)
            title, context = view(request, window, refresh, **query)
            return _page(request, template, title, context, window=window, refresh=refresh, **query)

        return page

    return decorate


def _refuse_nul_characters(query):
    # PostgreSQL refuses a NUL in any string it is sent: a 400 naming it, not a 500.
    for name, values in query.lists():
        if any("\x00" in value for value in (name, *values)):
            raise BadParameter(f"{name.replace(chr(0), '')}: must not contain a NUL character")


def _sort_parameter(query):
    return {"sort": ops_queries.parse_sort(query.get("sort"))}


def _route_parameters(query):
    route = query.get("route", "")
    if not route:
        raise BadParameter("route: give the route template, e.g. ?route=/api/v1/orders/")
    return {"route": route, "method": query.get("method", "")}


# --- Presentation of the figures ------------------------------------------------------------------


def flush_interval_text():
    seconds = settings.TELEMETRY_FLUSH_SECONDS
    if not seconds:
        return "when it exits (TELEMETRY_FLUSH_SECONDS=0)"
    return f"every {seconds:g} s (TELEMETRY_FLUSH_SECONDS)"


def _no_traffic_message(window):
    return (
        f"No requests recorded in the last {window.label}. Send traffic to the service or pick a "
        f"longer window; each process writes its statistics {flush_interval_text()}."
    )


def _change_text(change, unit="%"):
    if change is None:
        return "no traffic in the previous"
    arrow = "▲" if change > 0 else "▼" if change < 0 else "="
    return f"{arrow} {abs(change):g} {unit} vs previous"


_milliseconds = units.format_milliseconds


def _totals(line):
    totals, previous, changes = line.totals, line.previous, line.changes
    has_previous = previous["requests"] > 0
    minutes = line.span.window.duration.total_seconds() / 60
    p95 = totals["latency_ms"]["p95"]
    return [
        {
            "label": "requests",
            "value": f"{totals['requests']:,}",
            "note": f"{totals['requests'] / minutes:,.1f} per minute",
            "change": _change_text(changes["requests"]),
        },
        {
            "label": "p95 latency",
            "value": _milliseconds(p95),
            "note": f"p50 {_milliseconds(totals['latency_ms']['p50'])}, "
            f"p99 {_milliseconds(totals['latency_ms']['p99'])}",
            "change": _change_text(changes["p95"]),
        },
        {
            "label": "error rate (5xx)",
            "value": charts.format_percent(round(100 * totals["error_rate"], 2)),
            "note": f"{totals['errors']:,} errors",
            "change": _change_text(changes["error_rate"] if has_previous else None, "pp"),
        },
        {
            "label": "slow rate",
            "value": charts.format_percent(round(100 * totals["slow_rate"], 2)),
            "note": f"{totals['slow']:,} ≥ {settings.LOG_SLOW_REQUEST_MS} ms",
            "change": _change_text(changes["slow_rate"] if has_previous else None, "pp"),
        },
    ]


@dataclasses.dataclass(frozen=True)
class LineChart:
    """A time-series chart of a timeline. `title` is formatted with the subject, the bucket
    (`per_bucket`) and the slow threshold (`slow_ms`); each series is a name and how its value
    is read from a bucket's summary (with `window`, for per-minute figures)."""

    title: str
    series: tuple[tuple[str, Callable], ...]
    value_format: Callable
    axis_label: str
    zero_is_data: bool = False
    value_without_requests: float | None = None  # 0 draws the bucket on the axis, None leaves a gap


def _requests_per_minute(summary, window):
    return round(summary["requests"] / window.bucket_minutes, 2)


def _percentile(name):
    return lambda summary, window: summary["latency_ms"][name]


def _share_chart(title, series_name, share, axis_label):
    """A share of the requests, in percent: 0 % is a figure (no errors), not a lack of data."""
    return LineChart(
        title=title,
        series=((series_name, lambda summary, window: round(100 * summary[share], 3)),),
        value_format=charts.format_percent,
        axis_label=axis_label,
        zero_is_data=True,
    )


LINE_CHARTS = {
    "requests": LineChart(
        title="Requests per minute, {subject}, average {per_bucket}",
        series=(("requests per minute", _requests_per_minute),),
        value_format=charts.format_per_minute,
        axis_label="requests per minute",
        value_without_requests=0,
    ),
    "latency": LineChart(
        title="Latency percentiles, {subject}, {per_bucket}",
        series=tuple((name, _percentile(name)) for name in ("p50", "p95", "p99")),
        value_format=units.format_milliseconds,
        axis_label="latency (ms)",
    ),
    "error_rate": _share_chart(
        "Error rate (5xx share of requests), {subject}, {per_bucket}",
        "5xx rate",
        "error_rate",
        "5xx (% of requests)",
    ),
    "slow_rate": _share_chart(
        "Slow rate (≥ {slow_ms} ms), {subject}, {per_bucket}",
        "slow rate",
        "slow_rate",
        "slow (% of requests)",
    ),
}


def _charts(line, subject):
    """The time-series charts of a timeline (LINE_CHARTS) and its status mix."""
    window = line.span.window
    zone = timezone.get_current_timezone()
    zone_name = timezone.get_current_timezone_name()
    times = [timezone.localtime(point.start, zone) for point in line.points]
    summaries = [point.summary if line.has_requests else None for point in line.points]
    empty = _no_traffic_message(window)
    title_fields = {
        "subject": subject,
        "per_bucket": f"per {window.bucket_label} bucket",
        "slow_ms": settings.LOG_SLOW_REQUEST_MS,
    }
    drawn = {
        key: charts.line_chart(
            label=chart.title.format(**title_fields),
            times=times,
            series=[
                charts.Series(
                    name,
                    [
                        value(summary, window) if summary else chart.value_without_requests
                        for summary in summaries
                    ],
                )
                for name, value in chart.series
            ],
            value_format=chart.value_format,
            axis_label=chart.axis_label,
            time_format=TIME_FORMATS[window.key],
            time_zone_name=zone_name,
            empty_message=empty,
            zero_is_data=chart.zero_is_data,
            # Span.ending_at ends every window with the bucket that holds now.
            last_in_progress=True,
        )
        for key, chart in LINE_CHARTS.items()
    }
    drawn["status"] = charts.bar_chart(
        label=f"Status code mix, {subject}, last {window.label}",
        bars=[
            (status_class, line.totals["status"][status_class]) for status_class in STATUS_CLASSES
        ],
        value_format=charts.format_count,
        empty_message=empty,
        classes=[f"ops-status-{status_class}" for status_class in STATUS_CLASSES],
    )
    return drawn


def _route_url(route, method, window, refresh):
    return reverse("ops:route") + _query(
        route=route, method=method, window=window.key, refresh=refresh
    )


def _with_route_urls(table, window, refresh):
    for row in table:
        row["url"] = _route_url(row["route"], row["method"], window, refresh)
    return table


def _recent_rows(items, change_url_name, window, refresh):
    """Newest slow requests or error groups: each with its admin page and its route's page."""
    return [
        {
            "item": item,
            "admin_url": reverse(change_url_name, args=[item.pk]),
            "route_url": _route_url(item.route, item.method, window, refresh),
        }
        for item in items
    ]


def _finding_rows(findings):
    can_link = _reverse_or_none("admin:profiling_queryfinding_changelist") is not None
    silk = settings.SILK_ENABLED
    return [
        {
            "item": item,
            "admin_url": _reverse_or_none("admin:profiling_queryfinding_change", item.pk)
            if can_link
            else None,
            "silk_url": _reverse_or_none("silk:request_detail", item.silk_request_id)
            if silk and item.silk_request_id
            else None,
        }
        for item in findings
    ]


def _recent_context(slow_requests, error_groups, findings, window, refresh):
    """What ops/_recent.html shows: the newest slow requests, error groups and query findings."""
    return {
        "slow_requests": _recent_rows(
            slow_requests, "admin:observability_slowrequest_change", window, refresh
        ),
        "error_groups": _recent_rows(
            error_groups, "admin:observability_errorgroup_change", window, refresh
        ),
        "findings": _finding_rows(findings),
    }


def cache_statistics():
    """Hits and misses where something counts them: django-prometheus' cache backends (all
    processes since they started) and the Redis server's own keyspace counters."""
    backend = settings.CACHES["default"]["BACKEND"]
    result = {"backend": backend.rsplit(".", 1)[-1], "counted": None, "redis": None}
    if backend.startswith("django_prometheus."):
        counted = dict.fromkeys(CACHE_COUNTERS.values(), 0)
        for family in metrics.registry().collect():
            name = CACHE_COUNTERS.get(family.name)
            if name is not None:
                counted[name] += sum(
                    sample.value for sample in family.samples if sample.name.endswith("_total")
                )
        gets = counted["hits"] + counted["misses"]
        counted["hit_ratio"] = percent(counted["hits"], gets)
        result["counted"] = counted
    if "redis" in backend.lower():
        result["redis"] = _redis_statistics()
    return result


def _redis_statistics():
    try:
        info = get_redis_connection("default").info("stats")
    except (RedisError, OSError) as error:
        return {"error": f"unreachable ({type(error).__name__})"}
    hits, misses = info.get("keyspace_hits", 0), info.get("keyspace_misses", 0)
    return {
        "hits": hits,
        "misses": misses,
        "hit_ratio": percent(hits, hits + misses),
    }


def _pools():
    return [
        {"alias": alias, "statistics": statistics}
        for alias, statistics in all_pool_statistics().items()
    ]


# --- Views --------------------------------------------------------------------------------------


@ops_page("ops/overview.html")
def overview(request, window, refresh):
    telemetry.flush_telemetry()
    span = ops_queries.Span.ending_at(window)
    with ops_queries.analytic_transaction():
        line = ops_queries.timeline(span)
        busiest = ops_queries.busiest_routes(span)
        slow_requests = ops_queries.newest_slow_requests(span.since)
        error_groups = ops_queries.newest_error_groups(span.since)
        findings = ops_queries.newest_findings(span.since)
    return "Ops overview", {
        "span": span,
        "timeline": line,
        "totals": _totals(line),
        "charts": _charts(line, "all routes"),
        "busiest_routes": _with_route_urls(busiest, window, refresh),
        "checks": health.run_checks(health.readiness_checks()),
        "pools": _pools(),
        "cache": cache_statistics(),
        **_recent_context(slow_requests, error_groups, findings, window, refresh),
        "routes_url": reverse("ops:routes") + _query(window=window.key, refresh=refresh),
    }


ROUTE_COLUMNS = (
    ("route", "route"),
    ("requests", "requests"),
    ("p95", "p95"),
    ("error_rate", "error rate"),
    ("slow", "slow"),
)


def _next_sort(key, current):
    """A click sorts by the column (figures largest first, routes A to Z); a second reverses."""
    first = key if key == "route" else f"-{key}"
    if current != first:
        return first
    return first.lstrip("-") if first.startswith("-") else f"-{key}"


@ops_page("ops/routes.html", parameters=_sort_parameter)
def routes(request, window, refresh, sort):
    telemetry.flush_telemetry()
    span = ops_queries.Span.ending_at(window)
    with ops_queries.analytic_transaction():
        table = ops_queries.sort_routes(ops_queries.route_table(span), sort)
    for row in _with_route_urls(table, window, refresh):
        row["sparkline_svg"] = charts.sparkline(
            row["sparkline"],
            f"{row['method']} {row['route']}: requests per {window.bucket_label}, "
            f"at most {max(row['sparkline'], default=0):,}",
        )
    columns = [
        {
            "label": label,
            "url": request.path
            + _query(window=window.key, refresh=refresh, sort=_next_sort(key, sort)),
            "sorted": {f"-{key}": "descending", key: "ascending"}.get(sort, ""),
        }
        for key, label in ROUTE_COLUMNS
    ]
    return "Routes", {"span": span, "table": table, "columns": columns, "sort": sort}


@ops_page("ops/route.html", parameters=_route_parameters)
def route_detail(request, window, refresh, route, method):
    telemetry.flush_telemetry()
    span = ops_queries.Span.ending_at(window)
    with ops_queries.analytic_transaction():
        line = ops_queries.timeline(span, route=route, method=method)
        slow_requests = ops_queries.newest_slow_requests(span.since, route=route, method=method)
        error_groups = ops_queries.newest_error_groups(span.since, route=route)
        findings = ops_queries.newest_findings(span.since, source=route)
    subject = f"{method} {route}".strip()
    return f"Route {subject}", {
        "route": route,
        "method": method,
        "span": span,
        "timeline": line,
        "totals": _totals(line),
        "charts": _charts(line, subject),
        **_recent_context(slow_requests, error_groups, findings, window, refresh),
        "routes_url": reverse("ops:routes") + _query(window=window.key, refresh=refresh),
    }


@ops_page("ops/database.html")
def database(request, window, refresh):
    report = database_report.report()
    tables = report["tables"]
    return "Database", {
        "report": report,
        "tables_chart": charts.bar_chart(
            label="Largest tables, total size with indexes",
            bars=[(row["table_name"], row["total_bytes"]) for row in tables.rows[:10]],
            value_format=units.format_bytes,
            empty_message="No tables yet: run manage.py migrate.",
        ),
        "long_running_seconds": database_report.long_running_seconds(),
        "statements_limit": database_report.TOP_STATEMENTS,
    }


@ops_page("ops/statements.html")
def statements(request, window, refresh):
    section = database_report.statements_report()
    return "Top statements by total time", {
        "section": section,
        "vendor": database_report.vendor(),
        "limit": database_report.TOP_STATEMENTS,
    }
