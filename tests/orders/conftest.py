import pytest
from rest_framework.test import APIClient

from tests.orders.factories import make_api_key, make_customer, make_organization, make_product
from tests.own_cache import clear_own_cache


@pytest.fixture(autouse=True)
def _empty_cache():
    # Throttle counters, report results and last-use guards must not leak between tests.
    clear_own_cache()
    yield
    clear_own_cache()


@pytest.fixture
def organization(db):
    return make_organization()


@pytest.fixture
def other_organization(db):
    return make_organization()


def api_client_for(organization):
    _, key = make_api_key(organization)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def api(organization):
    """An API client authenticated with a key of `organization`."""
    return api_client_for(organization)


@pytest.fixture
def other_api(other_organization):
    return api_client_for(other_organization)


@pytest.fixture
def customer(organization):
    return make_customer(organization)


@pytest.fixture
def product(organization):
    return make_product(organization)


def queries_for(client, url):
    """Queries of one GET, after a first request has recorded the key's last use."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(captured), response.json()
