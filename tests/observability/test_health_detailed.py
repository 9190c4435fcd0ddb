"""/health-detailed: who may read it and what it tells."""

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from tests.observability.conftest import METRICS_TOKEN, bearer, grant_ops_permission

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("metrics_token")]


def signed_in(client, *, is_staff):
    user = get_user_model().objects.create_user(
        username="staff" if is_staff else "customer", password="irrelevant", is_staff=is_staff
    )
    client.force_login(user)
    return client


def test_anonymous_gets_401_with_a_json_body(client):
    response = client.get("/health-detailed")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_signed_in_user_who_is_not_staff_gets_403(client):
    response = signed_in(client, is_staff=False).get("/health-detailed")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_staff_holding_the_ops_permission_get_200(client):
    staff = get_user_model().objects.create_user("ops", password="irrelevant", is_staff=True)
    client.force_login(grant_ops_permission(staff))

    assert client.get("/health-detailed").status_code == 200


def test_the_metrics_token_gets_200(client):
    assert client.get("/health-detailed", headers=bearer(METRICS_TOKEN)).status_code == 200


def test_a_wrong_token_gets_401(client):
    response = client.get("/health-detailed", headers=bearer(METRICS_TOKEN + "x"))

    assert response.status_code == 401


def test_a_wrong_token_gets_401_even_with_a_non_staff_session(client):
    response = signed_in(client, is_staff=False).get("/health-detailed", headers=bearer("nope"))

    assert response.status_code == 401


def test_no_token_is_accepted_while_metrics_token_is_unset(client):
    with override_settings(METRICS_TOKEN=""):
        response = client.get("/health-detailed", headers=bearer(""))

    assert response.status_code == 401


def test_it_reports_every_check_with_details(client):
    body = client.get("/health-detailed", headers=bearer(METRICS_TOKEN)).json()

    assert {"database", "migrations", "database_pool", "cache", "disk", "memory"} <= set(
        body["checks"]
    )
    assert body["checks"]["disk"]["details"]["path"]


def test_it_reports_versions_uptime_and_pid(client, settings):
    process = client.get("/health-detailed", headers=bearer(METRICS_TOKEN)).json()["process"]

    assert process["versions"]["git_sha"] == settings.GIT_SHA
    assert {"python", "django"} <= set(process["versions"])
    assert process["pid"] > 0
    assert process["uptime_seconds"] >= 0


def test_it_reports_pool_statistics_on_postgresql(client):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the connection pool exists on PostgreSQL only")

    body = client.get("/health-detailed", headers=bearer(METRICS_TOKEN)).json()

    assert body["checks"]["database_pool"]["details"]["statistics"]["pool_max"] >= 1
