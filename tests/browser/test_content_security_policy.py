"""The service's HTML under its Content-Security-Policy, in a real headless Chromium: the policy is
enforced (an injected inline script does not run), and the admin, Swagger UI and silk work under
it with no violation (tests/browser/conftest.py fails a test on any). The ops dashboards are
covered the same way by test_ops_dashboards.py."""

import pytest
from django.contrib.auth import get_user_model

from apps.orders.services import create_order
from tests.browser.conftest import STAFF_PASSWORD, STAFF_USERNAME, sign_in
from tests.orders.factories import make_api_key, make_customer, make_organization, make_product

pytestmark = [
    pytest.mark.browser,
    pytest.mark.system,
    pytest.mark.backend_independent,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def staff_user(transactional_db):
    """A superuser: the admin's model pages need permissions a plain staff member lacks."""
    return get_user_model().objects.create_superuser(STAFF_USERNAME, password=STAFF_PASSWORD)


@pytest.fixture
def seeded_telemetry():
    """None: these pages draw no request statistics."""


@pytest.fixture
def organization(transactional_db):
    return make_organization()


@pytest.fixture
def order(organization):
    return create_order(
        organization,
        make_customer(organization),
        [{"product": make_product(organization), "quantity": 1}],
    )


def test_an_injected_inline_script_does_not_run(browser_page, live_server):
    page, problems = browser_page
    sign_in(page, live_server, "/admin/")

    page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.injected = true;";
            document.body.appendChild(script);
        }"""
    )

    assert page.evaluate("() => window.injected") is None
    violations = problems.take_csp_violations()
    assert [violation["directive"] for violation in violations] == ["script-src-elem"]
    problems.assert_none()


def test_the_admin_login_and_index_work_under_the_policy(browser_page, live_server, screenshots):
    page, problems = browser_page

    sign_in(page, live_server, "/admin/")

    assert page.locator("#ops-dashboards").count() == 1
    page.screenshot(path=screenshots / "admin-index.png", full_page=True)
    problems.assert_none()


def test_the_admin_change_list_actions_work_under_the_policy(
    browser_page, live_server, screenshots, order
):
    page, problems = browser_page
    sign_in(page, live_server, "/admin/orders/order/")

    page.check("#action-toggle")

    # Counted by the admin's actions.js: its script ran.
    assert page.locator(".action-counter").text_content().strip().startswith("1 of 1 selected")
    page.screenshot(path=screenshots / "admin-orders.png", full_page=True)
    problems.assert_none()


def test_an_admin_change_form_works_under_the_policy(browser_page, live_server, screenshots, order):
    page, problems = browser_page
    sign_in(page, live_server, f"/admin/orders/order/{order.pk}/change/")

    assert page.locator("#order_form").count() == 1
    page.screenshot(path=screenshots / "admin-order.png", full_page=True)
    problems.assert_none()


def test_swagger_ui_draws_the_api_under_the_policy(browser_page, live_server, screenshots):
    page, problems = browser_page

    page.goto(f"{live_server.url}/api/docs/")

    operations = page.locator(".opblock")
    operations.first.wait_for()
    assert operations.count() >= 10
    operations.first.locator(".opblock-summary").click()
    page.locator(".try-out__btn").first.wait_for()
    page.screenshot(path=screenshots / "swagger-ui.png", full_page=True)
    problems.assert_none()


def test_silk_shows_a_recorded_request_under_the_policy(
    browser_page, live_server, screenshots, settings, organization
):
    page, problems = browser_page
    _, api_key = make_api_key(organization)
    settings.SILK_SAMPLE_PERCENT = 100.0
    response = page.request.get(
        f"{live_server.url}/api/v1/customers/", headers={"Authorization": f"Bearer {api_key}"}
    )
    assert response.status == 200
    settings.SILK_SAMPLE_PERCENT = 0.0

    # Each page settles (its favicon too) before the next one: a request cut short by leaving
    # the page would count as failed.
    sign_in(page, live_server, "/silk/")
    page.wait_for_load_state("networkidle")
    page.goto(f"{live_server.url}/silk/requests/", wait_until="networkidle")
    with page.expect_navigation(wait_until="networkidle"):
        page.locator("a", has_text="/api/v1/customers/").first.click()
    assert "/silk/request/" in page.url
    with page.expect_navigation(wait_until="networkidle"):
        page.click("text=SQL")

    assert page.locator("table tr").count() >= 2
    page.screenshot(path=screenshots / "silk-request-sql.png", full_page=True)
    problems.assert_none()
