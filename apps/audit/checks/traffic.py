"""Request health over the window, from the request statistics every process writes."""

import datetime as dt
import math

from django.conf import settings

from apps.audit.report import CRITICAL, INFO, WARNING, Finding
from apps.observability.ops.queries import analytic_transaction
from apps.observability.telemetry.models import RequestMinute, RequestQuarterHour
from apps.observability.telemetry.rows import QUARTER_HOUR_SECONDS
from apps.observability.telemetry.statistics import (
    aggregates,
    route_summary,
    sum_groups,
    summarize,
)

# Longer windows of whole quarter hours read the 15-minute rollup: 15 times fewer rows (14 days
# of minutes take seconds to sum); its window ends with the quarter hour holding now.
ROLLUP_FROM_MINUTES = 360


def request_statistics(scope):
    """Totals and per-route figures of the window, summed in one query."""
    quarter_hours = scope.minutes >= ROLLUP_FROM_MINUTES and scope.minutes % 15 == 0
    model = RequestQuarterHour if quarter_hours else RequestMinute
    step = QUARTER_HOUR_SECONDS if quarter_hours else 60
    end = (math.floor(scope.now.timestamp() / step) + 1) * step
    until = dt.datetime.fromtimestamp(end, tz=dt.UTC)
    since = until - dt.timedelta(minutes=scope.minutes)
    period = model.PERIOD_FIELD
    with analytic_transaction():
        groups = list(
            model.objects.filter(**{f"{period}__gte": since, f"{period}__lt": until})
            .order_by()
            .values("route", "method")
            .annotate(**aggregates())
        )
    routes = [route_summary(group) for group in groups]
    return {**summarize(sum_groups(groups)), "routes": routes, "table": model._meta.db_table}


def _percent(rate):
    return f"{100 * rate:.2f} %"


def request_health(scope):
    statistics = request_statistics(scope)
    budget_ms = settings.LOG_SLOW_REQUEST_MS
    minimum = settings.SCALING_AUDIT_MIN_ROUTE_REQUESTS
    requests = statistics["requests"]
    if not requests:
        return [
            Finding(
                "requests",
                INFO,
                "No request in the window",
                f"No request was recorded in the last {scope.minutes} min (request statistics): "
                "nothing to judge latency or errors by.",
                "Audit after traffic, or widen --minutes.",
            )
        ]
    error_rate, slow_rate = statistics["error_rate"], statistics["slow_rate"]
    p95 = statistics["latency_ms"]["p95"]
    data = {
        "requests": requests,
        "errors": statistics["errors"],
        "error_rate": error_rate,
        "slow": statistics["slow"],
        "slow_rate": slow_rate,
        "p95_ms": p95,
        "budget_ms": budget_ms,
        "read_from": statistics["table"],
    }
    overall = (
        f"{requests} requests in the last {scope.minutes} min: {statistics['errors']} 5xx "
        f"({_percent(error_rate)}), {statistics['slow']} at or above LOG_SLOW_REQUEST_MS "
        f"{budget_ms} ms ({_percent(slow_rate)}), p95 {p95} ms."
    )
    if error_rate >= settings.SCALING_AUDIT_ERROR_RATE_CRITICAL:
        severity = CRITICAL
    elif (
        error_rate >= settings.SCALING_AUDIT_ERROR_RATE_WARNING
        or slow_rate >= settings.SCALING_AUDIT_SLOW_RATE_WARNING
    ):
        severity = WARNING
    else:
        severity = INFO
    findings = [
        Finding(
            "requests",
            severity,
            "Request errors and latency over the window",
            overall,
            "Open Ops > Overview for the routes and error groups behind it "
            f"(5xx warns at {_percent(settings.SCALING_AUDIT_ERROR_RATE_WARNING)}, fails at "
            f"{_percent(settings.SCALING_AUDIT_ERROR_RATE_CRITICAL)}; slow warns at "
            f"{_percent(settings.SCALING_AUDIT_SLOW_RATE_WARNING)})."
            if severity != INFO
            else "",
            data,
        )
    ]
    judged = [route for route in statistics["routes"] if route["requests"] >= minimum]
    over = [
        route for route in judged if route["p95_ms"] is not None and route["p95_ms"] > budget_ms
    ]
    for route in sorted(over, key=lambda route: -route["p95_ms"]):
        findings.append(
            Finding(
                f"route-over-budget:{route['method']} {route['route']}",
                WARNING,
                f"{route['method']} {route['route']} is over its latency budget",
                f"p95 {route['p95_ms']} ms against LOG_SLOW_REQUEST_MS {budget_ms} ms over "
                f"{route['requests']} requests ({route['slow']} slow, {route['errors']} 5xx).",
                "Open the route in Ops > Routes: its slow requests show the queries that cost.",
                route,
            )
        )
    if not over:
        findings.append(
            Finding(
                "routes-within-budget",
                INFO,
                "Every route is within its latency budget",
                f"{len(judged)} route(s) with at least {minimum} requests "
                f"(SCALING_AUDIT_MIN_ROUTE_REQUESTS); every p95 is at most {budget_ms} ms.",
                "",
                {"routes": judged},
            )
        )
    return findings
