"""The development-only /api/dev/ endpoints that demo_traffic asks for a slow request, an N+1,
a 500 and 429s; absent from the URLconf in production."""

import pytest
from rest_framework.test import APIClient

from apps.orders.services import create_order
from tests.processes import STRONG_SECRET_KEY, project_environment, run_python

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls_with_demo_endpoints")]

RESOLVE_DEMO_URL = (
    "import django; django.setup(); from django.urls import resolve; "
    "print(resolve('/api/dev/slow/').view_name)"
)


def test_the_slow_endpoint_runs_a_slow_query(api, settings):
    settings.LOG_SLOW_QUERY_MS = 50
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = api.get("/api/dev/slow/", {"ms": 60})

    assert response.status_code == 200
    assert max(float(query["time"]) for query in captured.captured_queries) >= 0.05


def test_the_n_plus_one_endpoint_runs_one_query_per_order(api, organization, customer, product):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(6):
        create_order(organization, customer, [{"product": product, "quantity": 1}])
    api.get("/api/dev/n-plus-one/")  # the key's last use recorded
    with CaptureQueriesContext(connection) as captured:
        response = api.get("/api/dev/n-plus-one/")

    assert len(response.json()) == 6
    line_counts = [q for q in captured.captured_queries if "orders_orderline" in q["sql"]]
    assert len(line_counts) == 6


def test_the_error_endpoint_answers_500_in_the_error_shape(organization):
    from tests.orders.conftest import api_client_for

    client = api_client_for(organization)
    client.raise_request_exception = False

    response = client.get("/api/dev/error/")

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "server_error"


def test_the_throttled_endpoint_refuses_past_five_a_minute(api):
    statuses = [api.get("/api/dev/throttled/").status_code for _ in range(7)]

    assert statuses == [200] * 5 + [429] * 2


def test_the_demo_endpoints_need_an_api_key():
    assert APIClient().get("/api/dev/slow/").status_code == 401


@pytest.mark.system
def test_the_demo_endpoints_exist_in_development():
    environment = project_environment(
        DJANGO_SETTINGS_MODULE="project.settings", DJANGO_ENV="development"
    )
    result = run_python(RESOLVE_DEMO_URL, environment)

    assert result.stdout.strip() == "demo:slow", result.stderr


@pytest.mark.system
def test_the_demo_endpoints_do_not_exist_in_production():
    environment = project_environment(
        DJANGO_SETTINGS_MODULE="project.settings",
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY=STRONG_SECRET_KEY,
        DJANGO_ALLOWED_HOSTS="orders.example.com",
    )
    result = run_python(RESOLVE_DEMO_URL, environment)

    # The API's catch-all answers it: a JSON 404 like any URL under /api/ that is no endpoint.
    assert result.stdout.strip() == "api:not-found", result.stderr
