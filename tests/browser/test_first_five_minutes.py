"""A developer's first five minutes, in a real Chromium: the service started as `make run` starts
it (development mode, demo data, an admin), `manage.py demo_traffic` run against it, then the
landing page, the API root, every ops page and a slow request's detail, each with its content
and nothing wider than a 1280 px window.

One server for the module (tests/demo_service.py) on a SQLite file of its own, as `make run`
serves: the module is `backend_independent`, run in CI's SQLite pass only. The ops pages that
differ by database, the database pages, are measured against the same window on PostgreSQL by
tests/browser/test_ops_dashboards.py.
"""

import pytest

from tests.browser.conftest import WIDTH, PageProblems, assert_fits, sign_in
from tests.demo_service import ADMIN_PASSWORD, ADMIN_USERNAME, DEMO_TABLES, running_demo_service

pytestmark = [pytest.mark.browser, pytest.mark.system, pytest.mark.backend_independent]


@pytest.fixture(scope="module")
def demo_service(tmp_path_factory):
    directory = tmp_path_factory.mktemp("demo-service")
    with running_demo_service(f"sqlite:///{directory / 'db.sqlite3'}", directory) as service:
        yield service


@pytest.fixture(scope="module")
def staff_session(chromium, demo_service):
    """The admin's cookies, signed in once through the login form for the module's tests."""
    context = chromium.new_context()
    try:
        sign_in(context.new_page(), demo_service, "/admin/", ADMIN_USERNAME, ADMIN_PASSWORD)
        return context.storage_state()
    finally:
        context.close()


def open_page(chromium, storage_state=None):
    context = chromium.new_context(
        viewport={"width": WIDTH, "height": 900}, storage_state=storage_state
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems = PageProblems()
    problems.watch(page)
    return context, page, problems


@pytest.fixture
def page(chromium, demo_service):
    """A page of a visitor who has not signed in."""
    context, page, problems = open_page(chromium)
    try:
        yield page, problems
    finally:
        context.close()


@pytest.fixture
def staff_page(chromium, demo_service, staff_session):
    """A page of the admin (a superuser: every ops page and admin page)."""
    context, page, problems = open_page(chromium, staff_session)
    try:
        yield page, problems
    finally:
        context.close()


def test_demo_traffic_fills_the_slow_request_error_group_and_query_finding_tables(demo_service):
    assert "Sent " in demo_service.traffic_output
    rows = {table: demo_service.count_rows(table) for table in DEMO_TABLES}

    assert all(rows.values()), rows


def test_the_landing_page_says_what_this_is_and_links_everything(page, demo_service, tmp_path):
    page, problems = page

    page.goto(f"{demo_service.url}/")

    assert page.title() == "Orders service"
    for link in ("/api/v1/", "/api/docs/", "/admin/", "/admin/ops/", "/health", "/metrics"):
        assert page.locator(f'#content-main a[href="{link}"]').count() == 1, link
    assert page.locator("#home-version").text_content().strip().startswith("Version ")
    assert_fits(page)
    page.screenshot(path=tmp_path / "landing.png", full_page=True)
    problems.assert_none()


def test_the_api_root_lists_the_endpoints(page, demo_service, tmp_path):
    page, problems = page

    page.goto(f"{demo_service.url}/api/v1/")

    # Development: DRF's browsable API, under the same Content-Security-Policy.
    for endpoint in ("customers", "products", "orders", "reports/sales"):
        assert page.get_by_text(f"{demo_service.url}/api/v1/{endpoint}/").count() >= 1, endpoint
    assert_fits(page)
    page.screenshot(path=tmp_path / "api-root.png", full_page=True)
    problems.assert_none()


ROWS = "#result_list tbody tr"
OPS_PAGES = {
    "/admin/ops/": [
        "#chart-requests svg .ops-point",
        "#recent-slow-requests tbody tr",
        "#recent-error-groups tbody tr",
        "#recent-findings tbody tr",
    ],
    "/admin/ops/routes/": ["#routes-table tbody tr"],
    "/admin/ops/database/": ["h2"],
    "/admin/ops/database/statements/": ["h1"],
    "/admin/observability/slowrequest/": [ROWS],
    "/admin/observability/errorgroup/": [ROWS],
    "/admin/observability/requestminute/": [ROWS],
    "/admin/profiling/queryfinding/": [ROWS],
}


@pytest.mark.parametrize(("path", "content"), OPS_PAGES.items(), ids=list(OPS_PAGES))
def test_every_ops_page_shows_the_demo_traffic_and_fits_the_window(
    staff_page, demo_service, tmp_path, path, content
):
    page, problems = staff_page
    page.goto(f"{demo_service.url}{path}")

    for selector in content:
        assert page.locator(selector).count() >= 1, selector
    assert_fits(page)
    page.screenshot(path=tmp_path / "page.png", full_page=True)
    problems.assert_none()


def test_a_routes_page_after_demo_traffic_fits_the_window(staff_page, demo_service):
    page, problems = staff_page
    page.goto(f"{demo_service.url}/admin/ops/routes/")

    with page.expect_navigation():
        page.click("#routes-table a:text-is('/api/v1/orders/')")

    assert page.title().startswith("Route ")
    assert_fits(page)
    problems.assert_none()


def test_a_slow_requests_detail_links_its_silk_profile_queries_and_log_lines(
    staff_page, demo_service, tmp_path
):
    page, problems = staff_page
    page.goto(f"{demo_service.url}/admin/observability/slowrequest/?q=slow")

    with page.expect_navigation():
        page.locator("#result_list tbody tr th a").first.click()

    request_id = page.locator(".field-request_id .readonly").text_content().strip()
    assert request_id
    assert request_id in page.locator(".field-log_lines").text_content()
    assert page.locator("#slow-request-queries tr").count() >= 1
    assert_fits(page)
    page.screenshot(path=tmp_path / "slow-request.png", full_page=True)
    with page.expect_navigation(wait_until="networkidle"):
        page.click("#silk-profile")
    assert "/silk/request/" in page.url
    problems.assert_none()
