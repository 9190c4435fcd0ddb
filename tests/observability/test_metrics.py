"""/metrics: protected, answered for the pod IP, and carrying django-prometheus and our metrics."""

import psycopg
import pytest
from asgiref.sync import async_to_sync, iscoroutinefunction
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction
from django.db.utils import load_backend
from django.http import HttpResponse
from django.test import AsyncClient, Client, RequestFactory, override_settings
from django.urls import include, path
from prometheus_client.parser import text_string_to_metric_families

from apps.common import breakers
from apps.observability.metrics import registry as metrics
from apps.observability.metrics.db_backends import cursor_wrapper_class
from apps.observability.metrics.middleware import (
    PrometheusAfterMiddleware,
    PrometheusBeforeMiddleware,
    RequestMetrics,
)
from tests.observability.conftest import bearer, grant_ops_permission
from tests.processes import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("metrics_token")]


def fail(request):
    raise RuntimeError("metrics test failure")


urlpatterns = [
    path("metrics-test/fail/", fail, name="metrics-test-fail"),
    path("", include("project.urls")),
]


def scrape(client, **headers):
    response = client.get("/metrics", headers={**bearer(), **headers})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def sample_value(text, name, **labels):
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def change_between(before, after, **common_labels):
    """delta(name, **labels): how much a sample grew from one scrape to the next."""

    def delta(name, **labels):
        labels = {**common_labels, **labels}
        return sample_value(after, name, **labels) - sample_value(before, name, **labels)

    return delta


def test_anonymous_scrapes_get_401(client):
    response = client.get("/metrics")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_wrong_token_gets_401(client):
    assert client.get("/metrics", headers=bearer("nope")).status_code == 401


def test_an_unset_token_accepts_no_token(client):
    with override_settings(METRICS_TOKEN=""):
        assert client.get("/metrics", headers=bearer("")).status_code == 401


def test_signed_in_users_who_are_not_staff_get_403(client):
    client.force_login(get_user_model().objects.create_user("customer", password="irrelevant"))

    assert client.get("/metrics").status_code == 403


def test_sessions_of_staff_holding_the_ops_permission_may_read(client):
    staff = get_user_model().objects.create_user("ops", password="irrelevant", is_staff=True)
    client.force_login(grant_ops_permission(staff))

    assert client.get("/metrics").status_code == 200


def test_prometheus_scraping_the_pod_ip_is_not_rejected_by_allowed_hosts(client):
    assert "10.1.2.3" not in settings.ALLOWED_HOSTS

    scrape(client, Host="10.1.2.3:8000")


def test_request_metrics_count_responses_by_status_and_view(client):
    before = scrape(client)
    client.get("/admin/login/")
    client.get("/no/such/page/")
    after = scrape(client)

    delta = change_between(before, after)

    name = "django_http_responses_total_by_status_view_method_total"
    assert delta(name, status="200", view="admin:login", method="GET") == 1
    assert delta(name, status="404", view="<unmatched>", method="GET") == 1
    # Scrapes themselves are not traffic.
    assert delta("django_http_requests_before_middlewares_total") == 2


def test_a_request_served_through_asgi_is_counted_once(client):
    before = scrape(client)
    response = async_to_sync(AsyncClient().get)("/admin/login/")
    assert response.status_code == 200
    after = scrape(client)

    delta = change_between(before, after)

    assert delta("django_http_requests_before_middlewares_total") == 1
    assert delta("django_http_responses_before_middlewares_total") == 1
    assert delta("django_http_requests_latency_including_middlewares_seconds_count") == 1
    name = "django_http_responses_total_by_status_view_method_total"
    assert delta(name, status="200", view="admin:login", method="GET") == 1


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_the_request_middleware_counts_a_request_once_in_and_once_out(asynchronous):
    if asynchronous:

        async def view(request):
            return HttpResponse("ok")

    else:

        def view(request):
            return HttpResponse("ok")

    stack = PrometheusBeforeMiddleware(PrometheusAfterMiddleware(view))
    assert iscoroutinefunction(stack) == asynchronous
    counted = RequestMetrics.get_instance()
    requests, responses = counted.requests_total._value, counted.responses_total._value
    before = requests.get(), responses.get()

    serve = async_to_sync(stack) if asynchronous else stack
    assert serve(RequestFactory().get("/anything/")).status_code == 200

    assert (requests.get(), responses.get()) == (before[0] + 1, before[1] + 1)


# Request metrics django-prometheus has and the project does not export (apps/observability/
# prometheus.py): derivable from the ones kept, or unused.
DROPPED_REQUEST_METRICS = (
    "django_http_requests_total_by_method",
    "django_http_requests_total_by_transport",
    "django_http_requests_total_by_view_transport_method",
    "django_http_ajax_requests",
    "django_http_requests_body_total_bytes",
    "django_http_responses_body_total_bytes",
    "django_http_responses_total_by_templatename",
    "django_http_responses_total_by_charset",
    "django_http_responses_streaming",
    "django_http_requests_unknown_latency",
)


def sample_names(text):
    return {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }


@pytest.mark.urls(__name__)
def test_only_the_request_metrics_ops_read_are_exported(client):
    client.get("/admin/login/")
    client.get("/api/v1/orders/")  # a DRF (template) response
    client.post("/admin/login/", {"username": "nobody", "password": "x"})

    names = sample_names(scrape(client))

    assert {
        "django_http_requests_before_middlewares_total",
        "django_http_responses_before_middlewares_total",
        "django_http_requests_latency_including_middlewares_seconds_bucket",
        "django_http_requests_latency_seconds_by_view_method_bucket",
        "django_http_responses_total_by_status_total",
        "django_http_responses_total_by_status_view_method_total",
    } <= names
    assert [name for name in names if name.startswith(DROPPED_REQUEST_METRICS)] == []


@pytest.mark.urls(__name__)
def test_an_unhandled_exception_is_counted_once_per_request():
    client = Client(raise_request_exception=False)
    before = scrape(client)
    for _ in range(2):
        assert client.get("/metrics-test/fail/").status_code == 500
    after = scrape(client)

    delta = change_between(before, after)

    view = {"view": "metrics-test-fail"}
    assert delta("django_http_exceptions_total_by_type_total", type="RuntimeError") == 2
    assert delta("django_http_exceptions_total_by_view_total", **view) == 2
    assert (
        delta("django_http_responses_total_by_status_view_method_total", status="500", **view) == 2
    )
    # django-prometheus' own middleware observes a failed request twice (exception, 500).
    assert delta("django_http_requests_latency_seconds_by_view_method_count", **view) == 2
    assert delta("django_http_responses_total_by_status_total", status="500") == 2


def test_database_metrics_come_from_the_django_prometheus_backend(client):
    assert connection.settings_dict["ENGINE"].startswith("apps.observability.metrics.db_backends.")
    before = scrape(client)
    for _ in range(3):
        get_user_model().objects.count()

    after = scrape(client)

    delta = change_between(before, after, alias="default")

    assert delta("django_db_execute_total") == 3
    assert delta("django_db_query_duration_seconds_count") == 3


def test_a_failing_statement_is_counted_as_a_database_error_by_type(client):
    before = scrape(client)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table_for_metrics")
    after = scrape(client)

    delta = change_between(before, after, alias="default")

    # The driver's own exception, below Django's wrapping of it.
    error_type = "UndefinedTable" if connection.vendor == "postgresql" else "OperationalError"
    assert delta("django_db_errors_total", type=error_type) == 1


def test_executemany_counts_each_parameter_set_as_a_statement(client):
    table = connection.ops.quote_name(get_user_model()._meta.db_table)
    before = scrape(client)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET is_active = is_active WHERE id = %s", [(1,), (2,), (3,)]
        )
    after = scrape(client)

    delta = change_between(before, after, alias="default")

    assert delta("django_db_execute_total") == 3
    assert delta("django_db_execute_many_total") == 3
    assert delta("django_db_query_duration_seconds_count") == 1


@pytest.mark.django_db(transaction=True)
def test_the_database_metrics_cursor_class_is_built_once_not_per_connection():
    def query_on_a_new_connection():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        connection.close()

    query_on_a_new_connection()
    before = cursor_wrapper_class.cache_info()
    query_on_a_new_connection()
    query_on_a_new_connection()
    after = cursor_wrapper_class.cache_info()

    assert after.misses == before.misses
    assert after.hits >= before.hits + 2


def test_project_metrics_are_exported(client):
    metrics.TELEMETRY_FLUSH_FAILURES.inc(0)
    metrics.SLOW_REQUESTS.labels("/exported/", "GET").inc()

    text = scrape(client)

    assert sample_value(text, "orders_slow_requests_total", route="/exported/", method="GET") >= 1
    assert "orders_telemetry_flush_failures_total" in text
    assert "orders_telemetry_dropped_requests_total" in text


def test_latency_buckets_are_the_project_slo_buckets(client):
    client.get("/admin/login/")

    text = scrape(client)

    bounds = {
        float(sample.labels["le"])
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "django_http_requests_latency_including_middlewares_seconds_bucket"
    }
    assert bounds == set(settings.PROMETHEUS_LATENCY_BUCKETS)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the pool exists on PostgreSQL")
def test_pool_gauges_are_exported_on_postgresql(client):
    get_user_model().objects.count()

    text = scrape(client)

    assert sample_value(text, "orders_db_pool_max", alias="default") == settings.DB_POOL_MAX_SIZE
    assert "orders_db_pool_available" in text


@pytest.mark.skipif(
    "redis" not in settings.CACHES["default"]["BACKEND"], reason="runs when REDIS_URL is set"
)
def test_cache_metrics_come_from_the_django_prometheus_redis_backend(client):
    from django.core.cache import cache

    before = scrape(client)
    cache.get("metrics-test-missing-key")
    after = scrape(client)

    name = "django_cache_get_total"
    assert (
        sample_value(after, name, backend="redis")
        == sample_value(before, name, backend="redis") + 1
    )


def test_counters_that_alerts_read_exist_before_their_first_increment(client):
    text = scrape(client)

    for name, labels in (
        ("django_db_new_connection_errors_total", {"alias": "default"}),
        ("orders_query_findings_total", {"kind": "slow"}),
        ("orders_query_findings_total", {"kind": "n_plus_one"}),
        ("orders_heavy_reads_total", {"alias": "default"}),
    ):
        samples = [
            sample
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        ]
        assert samples, f"{name}{labels} is not exported"


def test_resources_of_the_process_and_the_host_are_exported(client):
    text = scrape(client)

    assert sample_value(text, "orders_worker_resident_memory_bytes") > 0
    assert sample_value(text, "orders_worker_open_fds") > 0
    assert sample_value(text, "orders_worker_max_fds") >= sample_value(
        text, "orders_worker_open_fds"
    )
    assert sample_value(text, "orders_worker_cpu_seconds") > 0
    assert sample_value(text, "orders_memory_limit_bytes") >= sample_value(
        text, "orders_memory_used_bytes"
    )
    assert sample_value(text, "orders_disk_size_bytes", path=str(settings.BASE_DIR)) > 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's own connections")
def test_postgresql_connections_are_exported_against_max_connections(client):
    metrics.update_gauges_job(final=False)  # the background flusher's job

    text = scrape(client)

    in_use = sample_value(text, "orders_postgres_connections", alias="default")
    usable = sample_value(text, "orders_postgres_max_connections", alias="default")
    assert 1 <= in_use <= usable


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the PostgreSQL pool")
@override_settings(DB_POOL_TIMEOUT=60, DB_POOL_OUTAGE_TIMEOUT=0.2)
def test_a_failed_checkout_from_the_pool_counts_as_a_failed_connection(client):
    alias = "refused_metrics_test"
    settings_dict = {
        **connection.settings_dict,
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "OPTIONS": {
            **connection.settings_dict["OPTIONS"],
            "pool": {"min_size": 0, "max_size": 1, "reconnect_timeout": 1},
        },
    }
    wrapper = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, alias)
    before = scrape(client)
    try:
        with pytest.raises(psycopg.OperationalError):
            wrapper.get_new_connection(wrapper.get_connection_params())
    finally:
        wrapper.close_pool()
        breakers.reset_breakers()
    after = scrape(client)

    labels = {"alias": alias, "vendor": "postgresql"}
    assert change_between(before, after, **labels)("django_db_new_connection_errors_total") == 1
