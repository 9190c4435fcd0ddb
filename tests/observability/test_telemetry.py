"""Telemetry: what the middleware records, the aggregator's arithmetic, the database flush."""

import math
import random
import time
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import OperationalError, connection
from django.http import JsonResponse
from django.test import Client, override_settings
from django.urls import include, path
from prometheus_client import REGISTRY

from apps.common import request_context
from apps.observability.telemetry import aggregation as telemetry
from apps.observability.telemetry import rows as telemetry_rows
from apps.observability.telemetry import writer
from apps.observability.telemetry.models import ErrorGroup, RequestMinute, SlowRequest
from tests.observability.logging_capture import access_lines, captured_console, json_lines

pytestmark = pytest.mark.urls(__name__)


def answer_ok(request):
    return JsonResponse({"ok": True})


def run_three_queries(request, pk):
    users = get_user_model().objects
    return JsonResponse({"counts": [users.count(), users.count(), users.count()]})


def fail_in_project_code(request):
    # Raised inside apps/observability/telemetry/aggregation.py: that frame names the error group.
    telemetry.percentile_from_buckets(None, 0.5)
    return JsonResponse({})


def answer_slowly(request):
    time.sleep(0.03)
    return JsonResponse({"slow": True})


def list_query_wrappers(request):
    """The execute wrappers of the request context on the connection, during a request."""
    get_user_model().objects.count()
    wrappers = [
        wrapper
        for wrapper in connection.execute_wrappers
        if getattr(wrapper, "__module__", "").startswith(("apps.observability", "apps.common"))
    ]
    return JsonResponse(
        {"count_query": [wrapper is request_context.count_query for wrapper in wrappers]}
    )


urlpatterns = [
    path("telemetry-test/ok/", answer_ok),
    path("telemetry-test/items/<int:pk>/queries/", run_three_queries),
    path("telemetry-test/boom/", fail_in_project_code),
    path("telemetry-test/slow/", answer_slowly),
    path("telemetry-test/wrappers/", list_query_wrappers),
    path("", include("project.urls")),
]


@pytest.fixture(autouse=True)
def empty_buffer():
    telemetry.aggregator.take()
    telemetry.aggregator.take_summaries()
    yield
    telemetry.aggregator.take()
    telemetry.aggregator.take_summaries()


@pytest.fixture
def client():
    return Client(raise_request_exception=False)


def buffered_rows():
    return {
        (route, method): values
        for (_, route, method), values in telemetry.aggregator.take().rows.items()
    }


def counter(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- Routes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "label"),
    [
        ("api/v1/orders/<int:pk>/", "/api/v1/orders/<int:pk>/"),
        ("admin/login/", "/admin/login/"),
        ("api/v1/products/$", "/api/v1/products/"),
        ("api/v1/products/(?P<pk>[0-9]{1,18})/$", "/api/v1/products/<pk>/"),
        ("api/v1/(?P<kind>(a|b))/(?P<pk>[^/.]+)/$", "/api/v1/<kind>/<pk>/"),
        (None, "<unmatched>"),
    ],
)
def test_routes_are_url_patterns_with_a_leading_slash(pattern, label):
    match = None if pattern is None else SimpleNamespace(route=pattern)

    assert request_context.route_label(match) == label


@pytest.mark.django_db
def test_the_route_is_the_pattern_never_the_raw_path(client):
    client.get("/telemetry-test/items/7/queries/")
    client.get("/telemetry-test/items/8/queries/")

    rows = buffered_rows()

    assert list(rows) == [("/telemetry-test/items/<int:pk>/queries/", "GET")]
    assert rows[("/telemetry-test/items/<int:pk>/queries/", "GET")][telemetry.REQUESTS] == 2


@pytest.mark.django_db
def test_include_prefixes_are_part_of_the_route(client):
    assert client.get("/admin/auth/user/1/change/").status_code == 302  # to the login page

    assert list(buffered_rows()) == [("/admin/auth/user/<path:object_id>/change/", "GET")]


def test_an_unresolved_path_is_one_label_whatever_the_path(client):
    client.get("/no/such/page/")
    client.get("/another/missing/page/")

    rows = buffered_rows()

    assert list(rows) == [("<unmatched>", "GET")]
    assert rows[("<unmatched>", "GET")][telemetry_rows.COUNTER_FIELDS.index("status_4xx")] == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["/health", "/ready", "/health-detailed", "/metrics", "/stats", "/static/admin/css/base.css"],
)
def test_probe_metrics_stats_and_static_paths_are_not_counted(client, path):
    client.get(path)

    assert buffered_rows() == {}


def test_unknown_methods_share_one_label():
    assert telemetry.normalise_method("BREW") == "OTHER"
    assert telemetry.normalise_method("PATCH") == "PATCH"


# --- What one request adds ------------------------------------------------------------------------


@pytest.mark.django_db
def test_status_classes_queries_and_database_time_are_counted(client):
    client.get("/telemetry-test/ok/")
    client.get("/telemetry-test/items/1/queries/")
    client.get("/admin/")  # 302 to the login page
    client.get("/no/such/page/")

    rows = buffered_rows()
    ok = dict(
        zip(telemetry_rows.COUNTER_FIELDS, rows[("/telemetry-test/ok/", "GET")], strict=False)
    )
    queries = dict(
        zip(
            telemetry_rows.COUNTER_FIELDS,
            rows[("/telemetry-test/items/<int:pk>/queries/", "GET")],
            strict=False,
        )
    )

    assert (ok["requests"], ok["status_2xx"], ok["query_count"]) == (1, 1, 0)
    assert queries["query_count"] == 3
    assert queries["db_time_ms"] > 0
    assert rows[("/admin/", "GET")][telemetry_rows.COUNTER_FIELDS.index("status_3xx")] == 1
    assert rows[("<unmatched>", "GET")][telemetry_rows.COUNTER_FIELDS.index("status_4xx")] == 1


@pytest.mark.django_db
def test_an_exception_counts_as_5xx_and_opens_an_error_group(client):
    response = client.get("/telemetry-test/boom/", headers={"X-Request-ID": "req-boom-1"})
    assert response.status_code == 500

    batch = telemetry.aggregator.take()
    ((_, route, method), row) = next(iter(batch.rows.items()))
    (occurrence,) = batch.errors.values()

    assert (route, method) == ("/telemetry-test/boom/", "GET")
    assert row[telemetry.STATUS_5XX] == 1
    assert occurrence.exception_class == "builtins.TypeError"
    assert occurrence.frame == "apps/observability/telemetry/rows.py in percentile_from_buckets"
    assert "not iterable" in occurrence.sample_message


@pytest.mark.django_db
@override_settings(LOG_SLOW_REQUEST_MS=20)
def test_a_slow_request_is_counted_sampled_and_exported(client):
    before = counter("orders_slow_requests_total", route="/telemetry-test/slow/", method="GET")

    client.get("/telemetry-test/slow/?secret=1")
    client.get("/telemetry-test/ok/")

    batch = telemetry.aggregator.take()
    slow_row = batch.rows[next(key for key in batch.rows if key[1] == "/telemetry-test/slow/")]
    ((_, route), samples) = next(iter(batch.slow_requests.items()))
    assert slow_row[telemetry.SLOW] == 1
    assert route == "/telemetry-test/slow/"
    assert samples[0].path == "/telemetry-test/slow/"  # no query string
    assert samples[0].duration_ms >= 20
    after = counter("orders_slow_requests_total", route="/telemetry-test/slow/", method="GET")
    assert after == before + 1


@pytest.mark.django_db
def test_queries_are_counted_by_one_wrapper_shared_with_the_access_line(client):
    response = client.get("/telemetry-test/wrappers/")

    assert response.json() == {"count_query": [True]}
    row = buffered_rows()[("/telemetry-test/wrappers/", "GET")]
    assert row[telemetry_rows.COUNTER_FIELDS.index("query_count")] == 1


WITHOUT_REQUEST_CONTEXT = [
    entry
    for entry in settings.MIDDLEWARE
    if entry != "apps.observability.logging.middleware.RequestContextMiddleware"
]


@pytest.mark.django_db
@override_settings(MIDDLEWARE=WITHOUT_REQUEST_CONTEXT)
def test_telemetry_counts_queries_and_errors_without_the_request_context_middleware(client):
    client.get("/telemetry-test/items/1/queries/")
    client.get("/telemetry-test/boom/", headers={"X-Request-ID": "req-without-context"})

    batch = telemetry.aggregator.take()
    rows = {route: values for (_, route, _), values in batch.rows.items()}
    (occurrence,) = batch.errors.values()
    queries = rows["/telemetry-test/items/<int:pk>/queries/"]
    assert queries[telemetry_rows.COUNTER_FIELDS.index("query_count")] == 3
    assert rows["/telemetry-test/boom/"][telemetry.STATUS_5XX] == 1
    assert occurrence.exception_class == "builtins.TypeError"
    assert occurrence.last_request_id == "req-without-context"
    assert request_context.current_request_state() is None


def test_a_request_is_never_failed_by_telemetry(client, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("telemetry is broken")

    monkeypatch.setattr(telemetry, "record_request", broken)
    before = counter("orders_telemetry_record_failures_total")

    response = client.get("/telemetry-test/ok/")

    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert counter("orders_telemetry_record_failures_total") == before + 1


# --- Percentiles ----------------------------------------------------------------------------------


def true_percentile(ordered, fraction):
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_fall_within_the_bucket_of_the_true_percentile(seed):
    generator = random.Random(seed)
    # A long-tailed latency distribution: most requests fast, some very slow.
    durations = [generator.lognormvariate(math.log(60), 0.9) for _ in range(20000)]
    durations += [generator.uniform(2000, 9000) for _ in range(300)]
    for duration in durations:
        telemetry.record_request(
            route="/percentiles/", method="GET", status=200, duration_ms=duration
        )
    (row,) = telemetry.aggregator.take().rows.values()
    buckets = row[telemetry.FIRST_BUCKET :]
    ordered = sorted(durations)

    assert sum(buckets) == len(durations)
    for fraction in (0.5, 0.95, 0.99):
        estimate = telemetry.percentile_from_buckets(buckets, fraction, max(durations))
        lower, upper = telemetry_rows.bucket_range(
            telemetry.bucket_index(true_percentile(ordered, fraction))
        )
        assert lower <= estimate <= upper, (fraction, estimate, lower, upper)


def test_the_open_ended_bucket_reports_the_maximum():
    buckets = [0] * telemetry_rows.BUCKET_COUNT
    buckets[-1] = 3

    assert telemetry.percentile_from_buckets(buckets, 0.99, 123456.0) == 123456.0
    assert telemetry.percentile_from_buckets([0] * telemetry_rows.BUCKET_COUNT, 0.5) is None


# --- Flushing -------------------------------------------------------------------------------------


def record(route="/flush/", status=200, duration_ms=12.0, started_at=None, count=1):
    for _ in range(count):
        telemetry.record_request(
            route=route,
            method="GET",
            status=status,
            duration_ms=duration_ms,
            query_count=2,
            db_time_ms=1.5,
            slow=duration_ms >= 1000,
            started_at=started_at,
        )


@pytest.mark.django_db
def test_flushes_add_into_the_same_minute_row():
    minute = telemetry.minute_start(time.time())
    record(status=200, duration_ms=10, started_at=minute + 1, count=3)
    telemetry.flush_telemetry()
    record(status=503, duration_ms=2500, started_at=minute + 2, count=2)
    record(status=404, duration_ms=5, started_at=minute + 3)
    telemetry.flush_telemetry()

    row = RequestMinute.objects.get()

    assert row.minute == telemetry.as_datetime(minute)
    assert (row.requests, row.status_2xx, row.status_4xx, row.status_5xx) == (6, 3, 1, 2)
    assert row.slow == 2
    assert row.duration_sum_ms == pytest.approx(3 * 10 + 2 * 2500 + 5)
    assert row.duration_max_ms == 2500
    assert (row.query_count, row.db_time_ms) == (12, pytest.approx(9.0))
    assert sum(getattr(row, name) for name in telemetry_rows.BUCKET_FIELDS) == 6


@pytest.mark.django_db
def test_a_failed_flush_keeps_the_buffer_and_the_next_one_writes_it_once(monkeypatch):
    def database_down(batch):
        raise OperationalError("connection refused")

    record(count=4)
    monkeypatch.setattr(telemetry, "write_batch", database_down)
    before = counter("orders_telemetry_flush_failures_total")

    assert telemetry.flush_telemetry() == 0
    assert counter("orders_telemetry_flush_failures_total") == before + 1
    assert RequestMinute.objects.count() == 0

    record(count=2)  # arrives while the database is down
    monkeypatch.undo()
    assert telemetry.flush_telemetry() == 6
    assert telemetry.flush_telemetry() == 0

    assert RequestMinute.objects.get().requests == 6


def test_the_buffer_is_bounded_dropping_the_oldest_minutes(monkeypatch):
    monkeypatch.setattr(telemetry, "MAX_BUFFERED_MINUTES", 3)
    start = telemetry.minute_start(time.time()) - 600
    before = counter("orders_telemetry_dropped_requests_total")

    for number in range(5):
        record(started_at=start + 60 * number, count=number + 1)

    minutes = sorted({key[0] for key in telemetry.aggregator.take().rows})
    assert minutes == [start + 120, start + 180, start + 240]
    assert counter("orders_telemetry_dropped_requests_total") == before + 1 + 2


@pytest.mark.django_db
def test_slow_requests_are_written_capped_per_route_and_minute(monkeypatch):
    # The cap of a process's buffer and the cap of the table.
    monkeypatch.setattr(telemetry, "SLOW_REQUESTS_PER_ROUTE_MINUTE", 3)
    monkeypatch.setattr(writer, "SLOW_REQUESTS_PER_ROUTE_MINUTE", 3)
    started_at = telemetry.minute_start(time.time()) + 5
    for number in range(5):
        telemetry.record_slow_request(
            telemetry_rows.SlowRequestSample(
                started_at=started_at,
                method="GET",
                route="/slow/",
                path=f"/slow/{number}",
                status=200,
                duration_ms=1000 + number,
                query_count=1,
                db_time_ms=2.0,
                request_id=f"req-{number}",
                user_id=7,
            )
        )
    telemetry.flush_telemetry()
    # Another process flushing into the same minute finds the cap reached.
    telemetry.record_slow_request(
        telemetry_rows.SlowRequestSample(started_at, "GET", "/slow/", "/slow/x", 200, 5000, 1, 2.0)
    )
    telemetry.flush_telemetry()

    assert SlowRequest.objects.count() == 3
    assert sorted(SlowRequest.objects.values_list("path", flat=True)) == [
        "/slow/0",
        "/slow/1",
        "/slow/2",
    ]


@pytest.mark.django_db
def test_error_groups_count_occurrences_and_reopen_after_resolve(client):
    client.get("/telemetry-test/boom/")
    client.get("/telemetry-test/boom/")
    telemetry.flush_telemetry()
    group = ErrorGroup.objects.get()
    assert (group.count, group.status) == (2, ErrorGroup.Status.OPEN)

    group.status = ErrorGroup.Status.RESOLVED
    group.resolved_at = group.last_seen
    group.save()
    time.sleep(0.01)
    client.get("/telemetry-test/boom/")
    telemetry.flush_telemetry()

    group.refresh_from_db()
    assert (group.count, group.status) == (3, ErrorGroup.Status.OPEN)
    assert group.first_seen < group.last_seen
    assert ErrorGroup.objects.count() == 1


@pytest.mark.django_db
def test_an_occurrence_from_before_the_resolve_does_not_reopen_the_group():
    exception = ValueError("late")
    telemetry.record_error(exception, route="/r/", method="GET", at=time.time() - 30)
    telemetry.flush_telemetry()
    ErrorGroup.objects.update(
        status=ErrorGroup.Status.RESOLVED, resolved_at=telemetry.as_datetime(time.time())
    )
    # Buffered in another process before the resolve, flushed after it.
    telemetry.record_error(exception, route="/r/", method="GET", at=time.time() - 20)
    telemetry.flush_telemetry()

    group = ErrorGroup.objects.get()
    assert (group.count, group.status) == (2, ErrorGroup.Status.RESOLVED)


def test_error_messages_are_redacted_and_short():
    exception = RuntimeError("login failed: password=hunter2 " + "x" * 1000)

    message = telemetry.sample_message(exception)

    assert "hunter2" not in message
    assert len(message) <= telemetry.SAMPLE_MESSAGE_LENGTH


class TakeTimeBeforeTelemetry:
    """Middleware between the request context and telemetry that spends time itself."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        time.sleep(0.03)
        return self.get_response(request)


TELEMETRY_MIDDLEWARE = "apps.observability.telemetry.middleware.TelemetryMiddleware"
WITH_WORK_BEFORE_TELEMETRY = [
    *settings.MIDDLEWARE[: settings.MIDDLEWARE.index(TELEMETRY_MIDDLEWARE)],
    f"{__name__}.TakeTimeBeforeTelemetry",
    *settings.MIDDLEWARE[settings.MIDDLEWARE.index(TELEMETRY_MIDDLEWARE) :],
]


@pytest.mark.django_db
@override_settings(MIDDLEWARE=WITH_WORK_BEFORE_TELEMETRY, LOG_SLOW_REQUEST_MS=20)
def test_a_request_is_slow_for_the_access_line_telemetry_and_prometheus_alike(client):
    before = counter("orders_slow_requests_total", route="/telemetry-test/ok/", method="GET")

    with captured_console() as console:
        client.get("/telemetry-test/ok/")

    (line,) = access_lines(json_lines(console.getvalue()))
    row = buffered_rows()[("/telemetry-test/ok/", "GET")]
    after = counter("orders_slow_requests_total", route="/telemetry-test/ok/", method="GET")
    assert line["slow"] is True
    assert row[telemetry_rows.COUNTER_FIELDS.index("slow")] == 1
    assert after == before + 1
    assert row[telemetry_rows.COUNTER_FIELDS.index("duration_sum_ms")] == pytest.approx(
        line["duration_ms"], abs=0.01
    )
