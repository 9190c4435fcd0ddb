"""The ops dashboards in a real headless Chromium: a staff member with the ops permission signs in
through the admin login, opens every ops page and sees charts drawn from seeded telemetry, with
no console error, no failed request and nothing loaded from another host. Each test leaves a
full-page screenshot in its temporary folder (printed on failure by pytest's tmp_path handling).

Only the database pages differ by database (PostgreSQL's statistics views or what SQLite can
tell): they run in both CI passes. What the other tests check, the browser drawing pages from the
same seeded telemetry, no database changes (the figures themselves are checked on both databases
by tests/observability/test_ops_views.py), so they are `backend_independent`: SQLite pass only."""

import datetime as dt
import time

import pytest
from django.contrib.auth import get_user_model

from apps.observability.telemetry import aggregation as telemetry
from apps.observability.telemetry.models import ErrorGroup, SlowRequest
from tests.browser.conftest import STAFF_PASSWORD, STAFF_USERNAME, WIDTH, assert_fits, sign_in
from tests.observability.conftest import grant_ops_permission

pytestmark = [pytest.mark.browser, pytest.mark.system, pytest.mark.django_db(transaction=True)]

SEEDED_ROUTES = ("/api/v1/orders/", "/api/v1/customers/", "/api/v1/products/")


@pytest.fixture
def staff_user(transactional_db):
    """A staff member of the "Ops" kind: the pages need observability.view_ops."""
    return grant_ops_permission(
        get_user_model().objects.create_user(STAFF_USERNAME, password=STAFF_PASSWORD, is_staff=True)
    )


@pytest.fixture
def seeded_telemetry(transactional_db):
    """Twenty minutes of traffic on three routes, one slow request and one error group, written
    the way the flusher writes them."""
    telemetry.aggregator.take()
    now = telemetry.minute_start(time.time())
    batch = telemetry.Aggregator()
    for minutes_ago in range(20):
        minute = now - 60 * minutes_ago
        for number, route in enumerate(SEEDED_ROUTES):
            for request in range(5 + number + minutes_ago % 4):
                status = 500 if request == 0 and minutes_ago % 7 == 0 else 200
                duration_ms = 8.0 * (number + 1) + 3 * request + minutes_ago
                batch.record(minute, route, "GET", status, duration_ms, 3, 1.0, False)
    telemetry.write_batch(batch.take())
    started = dt.datetime.now(tz=dt.UTC) - dt.timedelta(minutes=3)
    SlowRequest.objects.create(
        started_at=started,
        method="GET",
        route="/api/v1/orders/",
        path="/api/v1/orders/",
        status=200,
        duration_ms=1800.0,
        query_count=40,
        request_id="browser-slow-request",
    )
    ErrorGroup.objects.create(
        fingerprint="b" * 40,
        exception_class="builtins.RuntimeError",
        frame="apps/orders/services.py in pay",
        route="/api/v1/orders/",
        method="GET",
        count=3,
        first_seen=started,
        last_seen=started,
    )
    yield
    telemetry.aggregator.take()


def chart_points(page, chart_id):
    return page.locator(f"#{chart_id} svg .ops-point")


@pytest.mark.backend_independent
def test_staff_sign_in_and_the_overview_draws_its_charts(browser_page, live_server, screenshots):
    page, problems = browser_page

    sign_in(page, live_server, "/admin/ops/")

    assert page.title().startswith("Ops overview")
    for chart in ("chart-requests", "chart-latency", "chart-error-rate", "chart-slow-rate"):
        assert chart_points(page, chart).count() >= 20, chart
        box = page.locator(f"#{chart} svg").bounding_box()
        assert box["width"] > 300
        assert box["height"] > 80
    assert chart_points(page, "chart-status").count() == 4
    latency_title = chart_points(page, "chart-latency").first.locator("title").text_content()
    assert " UTC · p50: " in latency_title
    assert latency_title.endswith(" ms")
    page.screenshot(path=screenshots / "overview.png", full_page=True)
    problems.assert_none()


@pytest.mark.backend_independent
def test_a_route_that_just_served_traffic_appears_on_the_overview(
    browser_page, live_server, screenshots
):
    page, problems = browser_page
    sign_in(page, live_server, "/admin/ops/")
    assert page.locator("#busiest-routes-table").get_by_text("/api/v1/reports/sales/").count() == 0

    response = page.request.get(f"{live_server.url}/api/v1/reports/sales/")
    assert response.status == 401  # served (and counted) without an API key
    page.goto(f"{live_server.url}/admin/ops/?window=15m")

    assert page.locator("#busiest-routes-table a", has_text="/api/v1/reports/sales/").count() == 1
    page.screenshot(path=screenshots / "overview-after-traffic.png", full_page=True)
    problems.assert_none()


@pytest.mark.backend_independent
def test_the_routes_page_draws_a_sparkline_per_route_and_sorts(
    browser_page, live_server, screenshots
):
    page, problems = browser_page
    sign_in(page, live_server, "/admin/ops/routes/")

    rows = page.locator("#routes-table tbody tr")
    assert rows.count() >= len(SEEDED_ROUTES)
    assert page.locator("#routes-table svg.ops-sparkline polyline").count() == rows.count()
    # The click loads a new page: read the rows of that one, not of the page it leaves.
    with page.expect_navigation():
        page.click("#routes-table th a:text-is('p95')")
    # The pages opened by the test are routes too; among the seeded ones, slowest first.
    routes = page.locator("#routes-table tbody tr td:first-child").all_text_contents()
    assert [route for route in routes if route in SEEDED_ROUTES] == list(reversed(SEEDED_ROUTES))
    page.screenshot(path=screenshots / "routes.png", full_page=True)
    problems.assert_none()


@pytest.mark.backend_independent
def test_a_routes_own_page_draws_its_charts_and_lists_its_problems(
    browser_page, live_server, screenshots
):
    page, problems = browser_page
    sign_in(page, live_server, "/admin/ops/routes/")

    with page.expect_navigation():
        page.click("#routes-table a:text-is('/api/v1/orders/')")

    assert page.title().startswith("Route GET /api/v1/orders/")
    assert chart_points(page, "chart-latency").count() >= 20
    assert page.get_by_text("browser-slow-request").count() == 1
    assert page.get_by_text("builtins.RuntimeError").count() == 1
    page.screenshot(path=screenshots / "route.png", full_page=True)
    problems.assert_none()


@pytest.mark.parametrize(
    ("path", "title", "at_least", "screenshot"),
    [
        pytest.param(
            "/admin/ops/database/",
            "Database",
            # The largest tables drawn, and the top statements section.
            {"#chart-tables svg .ops-point": 5, "#statements": 1},
            "database.png",
            id="database-page-draws-the-largest-tables",
        ),
        pytest.param(
            "/admin/ops/database/statements/",
            "Top statements by total time",
            # Listed from pg_stat_statements, or how to enable it.
            {"#content-main >> text=/pg_stat_statements/": 1},
            "statements.png",
            id="top-statements-page-answers-with-its-section",
        ),
    ],
)
def test_the_database_pages_answer_with_their_sections_and_fit_the_window(
    browser_page, live_server, screenshots, path, title, at_least, screenshot
):
    page, problems = browser_page
    page.set_viewport_size({"width": WIDTH, "height": 900})
    sign_in(page, live_server, path)

    assert page.title().startswith(title)
    for selector, count in at_least.items():
        assert page.locator(selector).count() >= count, selector
    assert_fits(page)
    page.screenshot(path=screenshots / screenshot, full_page=True)
    problems.assert_none()


@pytest.mark.backend_independent
def test_the_admin_index_links_to_the_ops_pages(browser_page, live_server, screenshots):
    page, problems = browser_page
    sign_in(page, live_server, "/admin/")

    with page.expect_navigation():
        page.click("#ops-dashboards a:text-is('Overview')")

    assert page.url == f"{live_server.url}/admin/ops/"
    page.screenshot(path=screenshots / "admin-index-to-ops.png", full_page=True)
    problems.assert_none()


@pytest.mark.backend_independent
def test_anonymous_visitors_land_on_the_admin_login(browser_page, live_server, screenshots):
    page, problems = browser_page

    page.goto(f"{live_server.url}/admin/ops/")

    assert page.url == f"{live_server.url}/admin/login/?next=/admin/ops/"
    assert page.locator("#id_username").count() == 1
    page.screenshot(path=screenshots / "login.png", full_page=True)
    problems.assert_none()
