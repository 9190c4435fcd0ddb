"""The Content-Security-Policy header (django-csp) as the test client sees it: on every response,
with the request's nonce on the inline code the service's own templates carry, and silk's
additions on silk's pages only. tests/browser/test_content_security_policy.py shows the pages
working under it in a real browser."""

import re

import pytest
from csp.decorators import csp_update
from csp.exceptions import CSPNonceError
from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
from django.contrib.auth import get_user_model
from django.http import JsonResponse

from apps.common.middleware import CSPMiddleware
from apps.profiling.silk_csp import source_hash
from tests.processes import project_environment, run_python

pytestmark = pytest.mark.django_db

PRINT_POLICY = (
    "import django; django.setup(); from csp.utils import build_policy; print(build_policy())"
)


def directives(response):
    policy = response["Content-Security-Policy"]
    return {
        name: sources
        for name, *sources in (part.split() for part in policy.split(";") if part.strip())
    }


def nonce_of(response):
    return re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)


@pytest.fixture
def staff_client(client):
    client.force_login(get_user_model().objects.create_superuser("csp-staff", password="unused"))
    return client


def test_pages_allow_scripts_and_styles_from_this_origin_or_with_the_nonce_only(client):
    response = client.get("/admin/login/")

    policy = directives(response)
    nonce = f"'nonce-{nonce_of(response)}'"
    for directive in ("script-src", "style-src"):
        assert set(policy[directive]) == {"'self'", nonce, "'report-sample'"}
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]


def test_api_responses_carry_the_policy_too(client):
    response = client.get("/api/v1/customers/")

    assert response.status_code == 401
    assert directives(response)["default-src"] == ["'self'"]


def test_the_admin_inline_style_carries_the_nonce_of_the_header(client):
    response = client.get("/admin/login/")

    assert f'<style nonce="{nonce_of(response)}">' in response.content.decode()


def test_swagger_ui_inline_script_and_style_carry_the_nonce_of_the_header(client):
    response = client.get("/api/docs/")

    page = response.content.decode()
    assert f'<script nonce="{nonce_of(response)}">' in page
    assert f'<style nonce="{nonce_of(response)}">' in page
    assert "SwaggerUIBundle(" in page


def test_silk_pages_allow_silks_own_inline_handlers_by_hash(staff_client):
    policy = directives(staff_client.get("/silk/"))

    assert "'unsafe-hashes'" in policy["script-src"]
    assert source_hash("this.form.submit();") in policy["script-src"]
    assert source_hash("display:none") in policy["style-src"]
    assert "'unsafe-inline'" not in policy["script-src"] + policy["style-src"]


def test_pages_outside_silk_allow_no_inline_handler(staff_client):
    policy = directives(staff_client.get("/admin/"))

    assert "'unsafe-hashes'" not in policy["script-src"] + policy["style-src"]
    assert "'unsafe-eval'" not in policy["script-src"]


@pytest.mark.system
def test_csp_report_uri_says_where_browsers_report_violations():
    environment = project_environment(
        DJANGO_SETTINGS_MODULE="project.settings",
        CSP_REPORT_URI="https://reports.example.com/csp",
    )

    result = run_python(PRINT_POLICY, environment)

    assert result.returncode == 0, result.stderr
    assert "report-uri https://reports.example.com/csp" in result.stdout


@pytest.mark.system
def test_without_csp_report_uri_violations_are_reported_nowhere():
    environment = project_environment(DJANGO_SETTINGS_MODULE="project.settings")

    result = run_python(PRINT_POLICY, environment)

    assert result.returncode == 0, result.stderr
    assert "default-src 'self'" in result.stdout
    assert "report-uri" not in result.stdout


def responses_of_both_middlewares(request_factory, view_response, path="/api/v1/ping/"):
    """The response of the project's CSPMiddleware and of django-csp's own for the same request."""
    return [
        middleware(lambda request: view_response())(request_factory.get(path))
        for middleware in (CSPMiddleware, DjangoCSPMiddleware)
    ]


def test_a_response_without_a_nonce_gets_the_headers_django_csp_writes(rf):
    ours, django_csps = responses_of_both_middlewares(rf, lambda: JsonResponse({}))

    assert ours["Content-Security-Policy"] == django_csps["Content-Security-Policy"]
    assert "Content-Security-Policy-Report-Only" not in ours


def test_the_policy_follows_a_change_of_the_settings(rf, settings):
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": {"img-src": ["'self'"]}}

    ours, django_csps = responses_of_both_middlewares(rf, lambda: JsonResponse({}))

    assert ours["Content-Security-Policy"] == "default-src 'none'"
    assert "img-src 'self'" in ours["Content-Security-Policy-Report-Only"]
    assert ours.headers == django_csps.headers


def test_excluded_url_prefixes_are_left_without_the_header(rf, settings):
    settings.CONTENT_SECURITY_POLICY = {
        **settings.CONTENT_SECURITY_POLICY,
        "EXCLUDE_URL_PREFIXES": ["/api/"],
    }

    ours, django_csps = responses_of_both_middlewares(rf, lambda: JsonResponse({}))

    assert "Content-Security-Policy" not in ours
    assert ours.headers == django_csps.headers


def test_a_view_with_a_policy_of_its_own_keeps_it(rf):
    @csp_update({"img-src": ["https://images.example.com"]})
    def view(request):
        return JsonResponse({})

    ours, _ = responses_of_both_middlewares(rf, lambda: view(None))

    assert "https://images.example.com" in directives(ours)["img-src"]


def test_the_nonce_cannot_be_read_once_the_header_is_written(rf):
    request = rf.get("/api/v1/ping/")
    CSPMiddleware(lambda request: JsonResponse({}))(request)

    with pytest.raises(CSPNonceError):
        str(request.csp_nonce)
