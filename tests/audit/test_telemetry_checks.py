"""The checks that read what the service recorded: request health, query findings, retention."""

import datetime as dt

import pytest
from django.utils import timezone

from apps.audit.checks import configuration, queries, traffic
from apps.audit.report import CRITICAL, INFO, WARNING
from apps.observability.telemetry.aggregation import bucket_index
from apps.observability.telemetry.models import RequestMinute, RequestQuarterHour
from apps.observability.telemetry.rows import BUCKET_FIELDS
from apps.profiling.models import QueryFinding
from tests.audit.conftest import finding, ids, scope

pytestmark = [pytest.mark.django_db]


def record_minute(route, requests, duration_ms, errors=0, minutes_ago=5, slow=0):
    """One route's minute with every request taking `duration_ms`."""
    minute = (timezone.now() - dt.timedelta(minutes=minutes_ago)).replace(second=0, microsecond=0)
    buckets = {BUCKET_FIELDS[bucket_index(duration_ms)]: requests}
    return RequestMinute.objects.create(
        minute=minute,
        route=route,
        method="GET",
        requests=requests,
        status_2xx=requests - errors,
        status_5xx=errors,
        slow=slow,
        duration_sum_ms=duration_ms * requests,
        duration_max_ms=duration_ms,
        **buckets,
    )


# --- Request health -------------------------------------------------------------------------------


def test_an_error_rate_above_the_critical_threshold_fails(settings):
    settings.SCALING_AUDIT_ERROR_RATE_CRITICAL = 0.05
    record_minute("/api/v1/orders/", requests=100, duration_ms=20, errors=10)

    requests = finding(traffic.request_health(scope()), "requests")

    assert requests.severity == CRITICAL
    assert "10 5xx (10.00 %)" in requests.evidence


def test_a_route_whose_p95_exceeds_log_slow_request_ms_is_over_budget(settings):
    settings.LOG_SLOW_REQUEST_MS = 500
    settings.SCALING_AUDIT_MIN_ROUTE_REQUESTS = 10
    record_minute("/api/v1/orders/", requests=50, duration_ms=900, slow=50)
    record_minute("/api/v1/products/", requests=50, duration_ms=20)

    findings = traffic.request_health(scope())

    over = [item for item in findings if item.id.startswith("route-over-budget:")]
    assert ids(over) == ["route-over-budget:GET /api/v1/orders/"]
    assert "against LOG_SLOW_REQUEST_MS 500 ms" in over[0].evidence


def test_healthy_traffic_passes_with_every_route_within_budget(settings):
    settings.SCALING_AUDIT_MIN_ROUTE_REQUESTS = 10
    record_minute("/api/v1/orders/", requests=50, duration_ms=20)

    findings = traffic.request_health(scope())

    assert finding(findings, "requests").severity == INFO
    assert finding(findings, "routes-within-budget").severity == INFO


def test_traffic_before_the_window_is_not_judged():
    record_minute("/api/v1/orders/", requests=100, duration_ms=20, errors=50, minutes_ago=120)

    assert ids(traffic.request_health(scope(minutes=60))) == ["requests"]
    assert finding(traffic.request_health(scope(minutes=60)), "requests").severity == INFO


def test_a_long_window_is_read_from_the_quarter_hour_rollup():
    two_days_ago = timezone.now() - dt.timedelta(days=2)
    RequestQuarterHour.objects.create(
        quarter_hour=two_days_ago.replace(minute=0, second=0, microsecond=0),
        route="/api/v1/orders/",
        method="GET",
        requests=100,
        status_2xx=90,
        status_5xx=10,
        duration_sum_ms=2000,
        duration_max_ms=20,
        **{BUCKET_FIELDS[bucket_index(20)]: 100},
    )

    requests = finding(traffic.request_health(scope(minutes=3 * 24 * 60)), "requests")

    assert requests.severity == CRITICAL
    assert requests.data["read_from"] == RequestQuarterHour._meta.db_table


# --- Query findings -------------------------------------------------------------------------------


def make_query_finding(callsite, total_ms, status=QueryFinding.Status.NEW, seen=None):
    seen = seen or timezone.now()
    return QueryFinding.objects.create(
        key=callsite,
        kind=QueryFinding.Kind.N_PLUS_ONE,
        fingerprint="f" * 16,
        sample_sql="SELECT * FROM orders_product WHERE id = ?",
        callsite=callsite,
        source="/api/v1/orders/",
        occurrences=3,
        max_repeats=12,
        total_ms=total_ms,
        max_ms=2.0,
        first_seen=seen,
        last_seen=seen,
        status=status,
    )


def test_open_n_plus_one_findings_are_listed_by_total_time_with_their_call_sites():
    make_query_finding("apps/orders/api/views.py:40", total_ms=10)
    make_query_finding("apps/orders/services.py:90", total_ms=300)

    findings = queries.query_findings(scope())

    assert ids(findings) == [
        "query:n_plus_one:apps/orders/services.py:90",
        "query:n_plus_one:apps/orders/api/views.py:40",
    ]
    assert {item.severity for item in findings} == {WARNING}


def test_fixed_findings_are_not_open():
    make_query_finding("apps/orders/services.py:90", 300, status=QueryFinding.Status.FIXED)

    assert finding(queries.query_findings(scope()), "query-findings").severity == INFO


# --- Retention ------------------------------------------------------------------------------------


def test_statistics_older_than_the_retention_show_pruning_is_not_running(settings):
    settings.TELEMETRY_RETENTION_DAYS = 14
    record_minute("/api/v1/orders/", requests=1, duration_ms=5, minutes_ago=16 * 24 * 60)

    stale = finding(configuration.retention(scope()), "retention:requestminute")

    assert stale.severity == WARNING
    assert "TELEMETRY_RETENTION_DAYS 14" in stale.evidence


def test_statistics_within_the_retention_pass(settings):
    settings.TELEMETRY_RETENTION_DAYS = 14
    record_minute("/api/v1/orders/", requests=1, duration_ms=5, minutes_ago=13 * 24 * 60)

    assert finding(configuration.retention(scope()), "retention:requestminute").severity == INFO


def test_silk_holding_more_than_its_maximum_warns(settings):
    from silk.models import Request

    settings.SILKY_MAX_RECORDED_REQUESTS = 1
    for _ in range(3):
        Request.objects.create(path="/x/", method="GET", start_time=timezone.now())

    assert finding(configuration.retention(scope()), "retention:silk").severity == WARNING


def test_silk_within_its_maximum_passes(settings):
    settings.SILKY_MAX_RECORDED_REQUESTS = 10

    assert finding(configuration.retention(scope()), "retention:silk").severity == INFO
