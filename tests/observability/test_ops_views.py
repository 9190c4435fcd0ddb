"""Ops dashboards (/admin/ops/): who may see them, what they show, and how many queries they run."""

import datetime as dt
import re
import time
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from django.urls import NoReverseMatch, reverse

from apps.observability.telemetry import aggregation as telemetry
from apps.observability.telemetry.models import ErrorGroup, SlowRequest
from apps.profiling.models import QueryFinding

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.no_nplusone,
    pytest.mark.usefixtures("empty_telemetry_buffer"),
]

PAGES = [
    "/admin/ops/",
    "/admin/ops/routes/",
    "/admin/ops/routes/route/?route=/api/v1/orders/",
    "/admin/ops/database/",
    "/admin/ops/database/statements/",
]


def record(route, count, *, minutes_ago=0, status=200, duration_ms=20.0, method="GET"):
    """What a process's flusher writes after serving `count` such requests."""
    minute = telemetry.minute_start(time.time()) - 60 * minutes_ago
    batch = telemetry.Aggregator()
    for _ in range(count):
        batch.record(minute, route, method, status, duration_ms, 2, 1.0, duration_ms >= 1000)
    telemetry.write_batch(batch.take())


def add_slow_request(route, path, minutes_ago=0):
    return SlowRequest.objects.create(
        started_at=dt.datetime.now(tz=dt.UTC) - dt.timedelta(minutes=minutes_ago),
        method="GET",
        route=route,
        path=path,
        status=200,
        duration_ms=1500.0,
        query_count=3,
        request_id=f"request-{path.strip('/').replace('/', '-')}",
    )


def add_error_group(route, exception_class):
    now = dt.datetime.now(tz=dt.UTC)
    return ErrorGroup.objects.create(
        fingerprint=uuid.uuid4().hex[:40],
        exception_class=exception_class,
        frame="apps/orders/services.py in pay",
        route=route,
        method="GET",
        count=3,
        first_seen=now,
        last_seen=now,
    )


def add_finding(**fields):
    now = dt.datetime.now(tz=dt.UTC)
    return QueryFinding.objects.create(first_seen=now, last_seen=now, **fields)


def page(client, path):
    response = client.get(path)
    assert response.status_code == 200, response.content[:2000]
    return response.content.decode()


# --- Access -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_visitors_are_sent_to_the_admin_login(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/admin/ops/")


@pytest.mark.parametrize("path", PAGES)
def test_signed_in_users_who_are_not_staff_are_refused(client, path):
    user = get_user_model().objects.create_user("customer", password="irrelevant")
    client.force_login(user)

    assert client.get(path).status_code == 403


@pytest.mark.parametrize("path", PAGES)
def test_staff_see_every_page_in_the_admin_layout(staff_client, path):
    html = page(staff_client, path)

    assert 'id="site-name"' in html  # the admin's header
    assert 'class="ops-nav"' in html
    assert "ops/ops.css" in html


def test_the_admin_index_links_the_ops_pages_above_the_app_list(superuser_client):
    html = page(superuser_client, "/admin/")

    for name in ("ops:overview", "ops:routes", "ops:database", "ops:statements"):
        assert f'href="{reverse(name)}"' in html
    assert html.index('id="ops-dashboards"') < html.index("app-observability")


@pytest.mark.parametrize("path", PAGES)
def test_pages_load_nothing_from_another_host(staff_client, path):
    record("/api/v1/orders/", 5)

    html = page(staff_client, path)

    external = re.findall(r'(?:src|href)="((?:https?:)?//[^"]*)"', html)
    assert external == []


# --- Overview -----------------------------------------------------------------------------------


def test_the_overview_draws_charts_from_recorded_requests(staff_client):
    record("/api/v1/orders/", 30, minutes_ago=2, duration_ms=40.0)
    record("/api/v1/orders/", 10, minutes_ago=1, duration_ms=400.0)

    html = page(staff_client, "/admin/ops/")

    assert html.count('<svg class="ops-chart') == 5
    assert 'aria-label="Latency percentiles, all routes, per 1 min bucket"' in html
    assert re.search(r"<title>\d\d:\d\d UTC · p95: [\d.]+ ms</title>", html)
    assert re.search(r"<title>\d\d:\d\d UTC · requests per minute: 30/min</title>", html)


@pytest.mark.parametrize("path", ["/admin/ops/", "/admin/ops/routes/"])
def test_pages_say_what_to_do_without_traffic(staff_client, path):
    html = page(staff_client, path)

    assert "No requests recorded in the last 1 h. Send traffic to the service" in html
    assert "TELEMETRY_FLUSH_SECONDS" in html
    assert '<svg class="ops-chart"' not in html


def test_a_route_that_just_served_traffic_appears_on_the_overview(staff_client):
    assert staff_client.get("/api/v1/orders/").status_code == 401  # buffered, not yet flushed

    html = page(staff_client, "/admin/ops/")

    assert 'id="busiest-routes-table"' in html
    assert "/api/v1/orders/</a>" in html


def test_totals_show_the_change_against_the_previous_window(staff_client):
    record("/a/", 10, minutes_ago=90)
    record("/a/", 20, minutes_ago=5)

    html = page(staff_client, "/admin/ops/?window=1h")

    assert '<div class="ops-total-value">20</div>' in html
    assert "▲ 100 % vs previous 1 h" in html


def test_the_status_mix_counts_each_class(staff_client):
    record("/a/", 7, status=200)
    record("/a/", 2, status=404)
    record("/a/", 1, status=503)

    html = page(staff_client, "/admin/ops/")

    assert "<title>2xx: 7</title>" in html
    assert "<title>4xx: 2</title>" in html
    assert "<title>5xx: 1</title>" in html


def test_the_overview_lists_the_newest_slow_requests_errors_and_findings(staff_client):
    slow = add_slow_request("/api/v1/orders/", "/api/v1/orders/")
    error = add_error_group("/api/v1/orders/<int:pk>/pay/", "apps.orders.errors.PaymentFailed")
    add_finding(
        key="k" * 40,
        kind=QueryFinding.Kind.N_PLUS_ONE,
        fingerprint="abcdef0123456789",
        sample_sql="SELECT * FROM orders_customer WHERE id = ?",
        callsite="apps/orders/api/views.py:42",
        source="/api/v1/orders/",
        occurrences=4,
        max_repeats=12,
    )

    html = page(staff_client, "/admin/ops/")

    assert reverse("admin:observability_slowrequest_change", args=[slow.pk]) in html
    assert reverse("admin:observability_errorgroup_change", args=[error.pk]) in html
    assert "apps.orders.errors.PaymentFailed" in html
    assert "apps/orders/api/views.py:42" in html


def test_a_finding_recorded_by_silk_links_to_its_silk_page(staff_client, settings):
    if not settings.SILK_ENABLED:
        pytest.skip("SILK_ENABLED is off: there are no silk pages to link")
    silk_id = str(uuid.uuid4())
    finding = add_finding(
        key="s" * 40,
        kind=QueryFinding.Kind.DUPLICATE,
        fingerprint="0123456789abcdef",
        sample_sql="SELECT 1",
        callsite="apps/orders/reports.py:10",
        source="/api/v1/reports/sales/",
        occurrences=1,
        max_repeats=3,
        silk_request_id=silk_id,
    )

    html = page(staff_client, "/admin/ops/")

    assert f'href="/silk/request/{silk_id}/"' in html
    try:
        admin_url = reverse("admin:profiling_queryfinding_change", args=[finding.pk])
    except NoReverseMatch:
        return  # the findings admin is not registered in this build
    assert f'href="{admin_url}"' in html


def test_newest_lists_say_what_to_do_when_empty(staff_client):
    html = page(staff_client, "/admin/ops/")

    assert "No slow requests (≥ 1000 ms, LOG_SLOW_REQUEST_MS) in the last 1 h." in html
    assert "No 5xx errors in the last 1 h." in html
    assert "No N+1, duplicate or slow query findings in the last 1 h." in html


@pytest.mark.parametrize(
    "expected",
    [
        pytest.param(
            [
                'id="dependencies"',
                '<td class="ops-status ops-status-ok">ok</td>',
                "<td>database</td>",
                "<td>migrations</td>",
            ],
            id="dependency-health",
        ),
        pytest.param(['id="pool"', "<td>default</td>"], id="the-pool-of-each-database"),
    ],
)
def test_the_overview_shows_the_state_of_the_service(staff_client, expected):
    html = page(staff_client, "/admin/ops/")

    for text in expected:
        assert text in html


def test_cache_hits_are_reported_where_they_are_counted(staff_client, settings):
    html = page(staff_client, "/admin/ops/")

    if settings.CACHES["default"]["BACKEND"].startswith("django_prometheus."):
        assert "this service (RedisCache, since its processes started)" in html
    else:
        assert "Hits and misses are not known" in html
        assert "Set REDIS_URL" in html


@pytest.mark.parametrize("window", ["15m", "1h", "6h", "24h", "7d"])
def test_every_window_can_be_picked(staff_client, window):
    record("/a/", 3)

    html = page(staff_client, f"/admin/ops/?window={window}")

    assert f'href="/admin/ops/?window={window}" class="current"' in html
    assert html.count('<svg class="ops-chart') == 5


@pytest.mark.parametrize(
    ("path", "message"),
    [
        pytest.param(
            "/admin/ops/?window=3h",
            "window: &#x27;3h&#x27; is not one of 15m, 1h, 6h, 24h, 7d",
            id="unknown-window",
        ),
        pytest.param(
            "/admin/ops/?refresh=45",
            "refresh: must be one of 0, 30, 60, 300, got 45",
            id="unknown-refresh",
        ),
        pytest.param(
            "/admin/ops/routes/?sort=color",
            "sort: &#x27;color&#x27; is not one of route, requests, p95, error_rate, slow",
            id="unknown-sort-column",
        ),
        pytest.param(
            "/admin/ops/routes/route/",
            "route: give the route template, e.g. ?route=/api/v1/orders/",
            id="route-page-without-a-route",
        ),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(staff_client, path, message):
    response = staff_client.get(path)

    assert response.status_code == 400
    assert message in response.content.decode()


@pytest.mark.parametrize(
    "query",
    ["route=%00", "route=/api/v1/orders/&method=GE%00T", "route=/api/v1/orders/&x%00=1"],
)
def test_a_nul_character_in_a_parameter_is_a_400(staff_client, query):
    response = staff_client.get(f"/admin/ops/routes/route/?{query}")

    assert response.status_code == 400
    assert "must not contain a NUL character" in response.content.decode()


def test_auto_refresh_reloads_the_page_with_a_meta_refresh(staff_client):
    html = page(staff_client, "/admin/ops/?refresh=30")

    assert '<meta http-equiv="refresh" content="30">' in html
    assert 'href="/admin/ops/?window=1h&amp;refresh=30" class="current"' in html


def test_without_auto_refresh_there_is_no_meta_refresh(staff_client):
    assert 'http-equiv="refresh"' not in page(staff_client, "/admin/ops/")


def test_times_are_labelled_with_their_zone(staff_client):
    record("/a/", 3)

    with override_settings(TIME_ZONE="Europe/Berlin"):
        html = page(staff_client, "/admin/ops/")

    assert "Times in Europe/Berlin." in html
    assert "time (Europe/Berlin)" in html


# --- Routes ---------------------------------------------------------------------------------------


def test_the_routes_page_lists_every_route_with_a_sparkline(staff_client):
    record("/api/v1/orders/", 12)
    record("/api/v1/customers/", 3, status=500)

    html = page(staff_client, "/admin/ops/routes/")

    assert html.count('<svg class="ops-sparkline"') == 2
    assert "GET /api/v1/customers/: requests per 1 min, at most 3" in html
    assert "100.0 % <span" in html  # the customers route failed every time


def test_routes_are_sorted_by_the_chosen_column(staff_client):
    record("/fast/", 50, duration_ms=5.0)
    record("/slow/", 2, duration_ms=900.0)

    by_requests = page(staff_client, "/admin/ops/routes/")
    by_p95 = page(staff_client, "/admin/ops/routes/?sort=-p95")

    assert by_requests.index(">/fast/</a>") < by_requests.index(">/slow/</a>")
    assert by_p95.index(">/slow/</a>") < by_p95.index(">/fast/</a>")
    assert 'aria-sort="descending"><a href="/admin/ops/routes/?window=1h&amp;sort=p95"' in by_p95


def test_a_route_page_shows_only_that_routes_requests_and_problems(staff_client):
    record("/api/v1/orders/", 8)
    record("/api/v1/customers/", 30)
    add_slow_request("/api/v1/orders/", "/api/v1/orders/")
    add_slow_request("/api/v1/customers/", "/api/v1/customers/")
    add_error_group("/api/v1/customers/", "builtins.KeyError")

    html = page(staff_client, "/admin/ops/routes/route/?route=/api/v1/orders/&method=GET")

    assert "Route GET /api/v1/orders/" in html
    assert '<div class="ops-total-value">8</div>' in html
    assert "request-api-v1-orders" in html
    assert "request-api-v1-customers" not in html
    assert "builtins.KeyError" not in html
    assert html.count('<svg class="ops-chart') == 5


# --- Query counts -------------------------------------------------------------------------------


def add_routes(count, start=0):
    for number in range(start, start + count):
        record(f"/route-{number}/", 3, minutes_ago=number % 30, status=200 + 100 * (number % 4))
        add_slow_request(f"/route-{number}/", f"/route-{number}/x")
        add_error_group(f"/route-{number}/", f"builtins.Error{number}")


@pytest.mark.parametrize("path", ["/admin/ops/", "/admin/ops/routes/"])
def test_pages_run_as_many_queries_for_20_routes_as_for_2(
    staff_client, path, django_assert_max_num_queries, django_assert_num_queries
):
    add_routes(2)
    page(staff_client, path)  # the session and user are cached after the first request
    telemetry.aggregator.take()
    with django_assert_max_num_queries(30) as few:
        page(staff_client, path)
    add_routes(18, start=2)
    telemetry.aggregator.take()

    with django_assert_num_queries(len(few.captured_queries)):
        page(staff_client, path)


def test_a_route_page_links_to_that_routes_minutes_in_the_admin(superuser_client):
    record("/api/v1/orders/", 4)
    record("/api/v1/customers/", 2)
    html = page(superuser_client, "/admin/ops/routes/route/?route=/api/v1/orders/&method=GET")
    link = re.search(r'<a href="([^"]+)">This route\'s minutes in the admin</a>', html)

    admin_page = page(superuser_client, link.group(1).replace("&amp;", "&"))

    assert '<td class="field-route">/api/v1/orders/</td>' in admin_page
    assert '<td class="field-route">/api/v1/customers/</td>' not in admin_page
