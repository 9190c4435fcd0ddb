"""/admin/ops/audit/: the same report for ops staff, with its Markdown download."""

import pytest
from django.contrib.auth import get_user_model

pytestmark = [pytest.mark.django_db]

PAGE = "/admin/ops/audit/"
DOWNLOAD = "/admin/ops/audit/report.md"


@pytest.fixture
def ops_client(client):
    from tests.observability.conftest import grant_ops_permission

    staff = get_user_model().objects.create_user("ops", password="irrelevant", is_staff=True)
    grant_ops_permission(staff)
    client.force_login(staff)
    return client


def test_ops_staff_see_the_five_sections_and_the_verdict(ops_client):
    response = ops_client.get(PAGE)

    html = response.content.decode()
    assert response.status_code == 200
    positions = [
        html.index(title)
        for title in (
            "1. Performance Bottlenecks",
            "2. Logging &amp; Monitoring Readiness",
            "3. Scaling Strategy",
            "4. Observability Gaps &amp; Recommendations",
        )
    ]
    assert positions == sorted(positions)
    assert "5. Gate: Scaling Safety: PASS" in html


def test_the_page_links_the_markdown_download(ops_client):
    html = ops_client.get(PAGE + "?window=15m").content.decode()

    assert f'href="{DOWNLOAD}?window=15m&amp;fail_on=critical&amp;instances=1"' in html


def test_the_download_is_the_markdown_report(ops_client):
    response = ops_client.get(DOWNLOAD + "?window=15m&fail_on=warning&instances=2")

    text = response.content.decode()
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/markdown")
    assert response["Content-Disposition"].startswith('attachment; filename="scaling-audit-')
    assert "window of the last 15 min" in text
    assert "**2 instance(s)**" in text


def test_staff_without_the_ops_permission_are_refused(client):
    staff = get_user_model().objects.create_user("staff", password="x", is_staff=True)
    client.force_login(staff)

    assert client.get(PAGE).status_code == 403
    assert client.get(DOWNLOAD).status_code == 403


def test_anonymous_visitors_go_to_the_login(client):
    response = client.get(PAGE)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_a_bad_fail_on_is_a_400_naming_it(ops_client):
    response = ops_client.get(PAGE + "?fail_on=sometimes")

    assert response.status_code == 400
    assert "fail_on" in response.content.decode()


def test_a_bad_instance_count_on_the_download_is_a_json_400(ops_client):
    response = ops_client.get(DOWNLOAD + "?instances=many")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "instances": ["'many' is not a whole number of at least 1"]
    }
