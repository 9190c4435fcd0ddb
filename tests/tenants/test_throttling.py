import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from tests.orders.factories import make_api_key

pytestmark = [pytest.mark.django_db, pytest.mark.no_nplusone]


def client_for(organization):
    _, key = make_api_key(organization)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@override_settings(API_THROTTLE_RATE="3/minute")
def test_requests_over_the_rate_get_429_with_retry_after(organization):
    client = client_for(organization)
    statuses = [client.get("/api/v1/products/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = client.get("/api/v1/products/")
    assert response.json()["error"]["code"] == "throttled"
    assert 0 < int(response["Retry-After"]) <= 60


@override_settings(API_THROTTLE_RATE="2/minute")
def test_the_rate_is_counted_per_key(organization):
    first, second = client_for(organization), client_for(organization)
    for _ in range(2):
        first.get("/api/v1/products/")
    assert first.get("/api/v1/products/").status_code == 429
    assert second.get("/api/v1/products/").status_code == 200


def test_a_429_says_when_to_retry_after_the_rate_was_lowered(organization, settings):
    client = client_for(organization)
    settings.API_THROTTLE_RATE = "5/minute"
    for _ in range(5):
        assert client.get("/api/v1/products/").status_code == 200

    settings.API_THROTTLE_RATE = "2/minute"
    response = client.get("/api/v1/products/")

    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
