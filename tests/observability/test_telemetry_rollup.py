"""The 15-minute rollup (RequestQuarterHour): written by the flush with the minutes, filled from
stored minutes by migration 0003, and read by the long windows of the ops dashboards with the same
figures as the minutes would give."""

import datetime as dt
import importlib
import random
import time
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from apps.observability.ops import queries as ops_queries
from apps.observability.ops.queries import BucketStart
from apps.observability.telemetry import aggregation as telemetry
from apps.observability.telemetry import rollup
from apps.observability.telemetry import rows as telemetry_rows
from apps.observability.telemetry.models import RequestMinute, RequestQuarterHour
from apps.observability.telemetry.statistics import aggregates, summarize

pytestmark = [pytest.mark.django_db, pytest.mark.no_nplusone]

ROUTES = ("/api/v1/orders/", "/api/v1/orders/<int:pk>/", "/api/v1/products/")
VALUE_FIELDS = (*telemetry_rows.COUNTER_FIELDS, *telemetry_rows.BUCKET_FIELDS)


@pytest.fixture(autouse=True)
def empty_buffer():
    telemetry.aggregator.take()
    yield
    telemetry.aggregator.take()


def seed_two_days(now):
    """Requests over the last 48 hours, recorded and flushed as the middleware and flusher do.

    Durations are multiples of 1/4 ms, so sums are exact whatever order they are added in.
    """
    rng = random.Random(20261127)
    moments = sorted(now - rng.uniform(0, 48 * 3600) for _ in range(150))
    for index, started_at in enumerate(moments):
        for route in rng.sample(ROUTES, rng.randint(1, len(ROUTES))):
            for _ in range(rng.randint(1, 4)):
                duration_ms = rng.randint(1, 8000) / 4
                telemetry.record_request(
                    route=route,
                    method=rng.choice(("GET", "GET", "POST")),
                    status=rng.choice((200, 200, 200, 201, 302, 404, 500)),
                    duration_ms=duration_ms,
                    query_count=rng.randint(0, 12),
                    db_time_ms=rng.randint(0, 400) / 4,
                    slow=duration_ms >= 1000,
                    started_at=started_at,
                )
        # The buffer keeps at most MAX_BUFFERED_MINUTES minutes: flush as often as a flusher does.
        if index % 10 == 9:
            telemetry.flush_telemetry()
    telemetry.flush_telemetry()


def minute_groups(since, until, *fields, **expressions):
    return (
        RequestMinute.objects.filter(minute__gte=since, minute__lt=until)
        .order_by()
        .values(*fields, **expressions)
        .annotate(**aggregates())
    )


def test_a_flush_adds_the_same_rows_to_their_minutes_and_quarter_hours():
    start = telemetry_rows.quarter_hour_start(time.time()) - 3600
    for offset, duration_ms in ((0, 10.0), (60, 30.0), (14 * 60 + 59, 2000.0), (15 * 60, 5.0)):
        telemetry.record_request(
            route="/r/",
            method="GET",
            status=200,
            duration_ms=duration_ms,
            started_at=start + offset,
        )
    telemetry.flush_telemetry()
    # A second process (here: a second flush) adds into the same rows.
    telemetry.record_request(
        route="/r/", method="GET", status=500, duration_ms=40.0, started_at=start + 120
    )
    telemetry.flush_telemetry()

    assert RequestMinute.objects.count() == 5
    first, second = RequestQuarterHour.objects.order_by("quarter_hour")
    assert first.quarter_hour == telemetry.as_datetime(start)
    assert (first.requests, first.status_2xx, first.status_5xx) == (4, 3, 1)
    assert (first.duration_sum_ms, first.duration_max_ms) == (2080.0, 2000.0)
    assert sum(getattr(first, name) for name in telemetry_rows.BUCKET_FIELDS) == 4
    assert second.quarter_hour == telemetry.as_datetime(start + 900)
    assert (second.requests, second.duration_max_ms) == (1, 5.0)


@pytest.mark.parametrize("window_key", ["24h", "7d"])
def test_long_windows_read_the_rollup_and_match_the_minutes(window_key):
    now = time.time()
    seed_two_days(now)
    assert RequestQuarterHour.objects.count() < RequestMinute.objects.count()
    window = ops_queries.WINDOWS[window_key]
    span = ops_queries.Span.ending_at(window, now=telemetry.as_datetime(now))

    with CaptureQueriesContext(connection) as queries:
        line = ops_queries.timeline(span)
        table = ops_queries.route_table(span)
    statements = [query["sql"] for query in queries.captured_queries]
    assert all("observability_requestquarterhour" in sql for sql in statements)
    assert not any("observability_requestminute" in sql for sql in statements)

    bucket = BucketStart("minute", window.bucket_seconds)
    per_bucket = {
        group["bucket"]: summarize(group)
        for group in minute_groups(span.since, span.until, bucket=bucket)
    }
    expected_points = [per_bucket.get(int(start.timestamp())) for start in span.bucket_starts()]
    assert [point.summary for point in line.points] == expected_points
    assert line.totals["requests"] > 0
    in_span = RequestMinute.objects.filter(minute__gte=span.since, minute__lt=span.until)
    assert line.totals == summarize(in_span.aggregate(**aggregates()))
    before = RequestMinute.objects.filter(minute__gte=span.previous_since, minute__lt=span.since)
    assert line.previous == summarize(before.aggregate(**aggregates()))

    starts = [int(start.timestamp()) for start in span.bucket_starts()]
    sparklines = {}
    for group in (
        RequestMinute.objects.filter(minute__gte=span.since, minute__lt=span.until)
        .order_by()
        .values("route", "method", bucket=bucket)
        .annotate(bucket_requests=Sum("requests"))
    ):
        line_of_route = sparklines.setdefault((group["route"], group["method"]), [0] * len(starts))
        line_of_route[starts.index(group["bucket"])] = group["bucket_requests"]
    expected_table = {}
    for group in minute_groups(span.since, span.until, "route", "method"):
        summary = summarize(group)
        expected_table[(group["route"], group["method"])] = {
            "requests": summary["requests"],
            "p50": summary["latency_ms"]["p50"],
            "p95": summary["latency_ms"]["p95"],
            "avg": summary["latency_ms"]["avg"],
            "errors": summary["errors"],
            "slow": summary["slow"],
            "queries_per_request": summary["queries"]["per_request"],
            "sparkline": sparklines[(group["route"], group["method"])],
        }
    compared = ("requests", "p50", "p95", "avg", "errors", "slow", "queries_per_request")
    assert {
        (row["route"], row["method"]): {name: row[name] for name in (*compared, "sparkline")}
        for row in table
    } == expected_table


def test_windows_with_minute_buckets_read_the_minutes():
    for key in ("15m", "1h"):
        assert ops_queries.WINDOWS[key].statistics_model is RequestMinute


def test_windows_with_quarter_hour_buckets_read_the_rollup():
    for key in ("6h", "24h", "7d"):
        assert ops_queries.WINDOWS[key].statistics_model is RequestQuarterHour


def rollup_rows():
    return {
        (row["quarter_hour"], row["route"], row["method"]): row
        for row in RequestQuarterHour.objects.values(
            "quarter_hour", "route", "method", *VALUE_FIELDS
        )
    }


@pytest.mark.allow_nplusone(reason="the backfill reads one batch of minutes per query")
def test_the_data_migration_fills_the_rollup_from_stored_minutes():
    seed_two_days(time.time())
    flushed = rollup_rows()
    RequestQuarterHour.objects.all().delete()
    migration = importlib.import_module(
        "apps.observability.migrations.0003_fill_request_quarter_hours"
    )

    migration.fill_quarter_hours(django_apps, SimpleNamespace(connection=connection))
    assert rollup_rows() == flushed
    # Whole periods are replaced, never added to: running it again changes nothing.
    assert rollup.backfill_quarter_hours() == len(flushed)
    assert rollup_rows() == flushed


def test_the_backfill_of_an_empty_table_writes_nothing():
    assert rollup.backfill_quarter_hours() == 0
    assert not RequestQuarterHour.objects.exists()


@pytest.mark.allow_nplusone(reason="the backfill reads one batch of minutes per query")
def test_the_backfill_batches_stay_within_their_quarter_hours(monkeypatch):
    monkeypatch.setattr(rollup, "BACKFILL_BATCH", dt.timedelta(minutes=30))
    seed_two_days(time.time())
    flushed = rollup_rows()
    RequestQuarterHour.objects.all().delete()

    rollup.backfill_quarter_hours()

    assert rollup_rows() == flushed
