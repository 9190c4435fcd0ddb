"""GET /api/v1/: the API root lists every endpoint, without a key."""

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_the_api_root_answers_without_a_key():
    response = APIClient().get("/api/v1/")

    assert response.status_code == 200


def test_the_api_root_lists_every_endpoint():
    endpoints = APIClient().get("/api/v1/").json()

    assert set(endpoints) == {
        "customers",
        "products",
        "orders",
        "reports/sales",
        "reports/top-products",
        "schema",
        "docs",
    }
    assert endpoints["orders"] == "http://testserver/api/v1/orders/"


def test_every_endpoint_the_api_root_lists_answers_a_key(api):
    for url in APIClient().get("/api/v1/").json().values():
        assert api.get(url).status_code == 200, url


def test_the_api_root_answers_json_outside_development():
    response = APIClient().get("/api/v1/", HTTP_ACCEPT="text/html")

    assert response.status_code == 406
