import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from apps.tenants.models import OrganizationAPIKey
from tests.orders.factories import make_api_key

pytestmark = [pytest.mark.django_db, pytest.mark.no_nplusone]

URL = "/api/v1/customers/"


def get_with(authorization):
    client = APIClient()
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    return client.get(URL)


def assert_unauthorized(response, code):
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response["Cache-Control"] == "no-store"
    assert response.json()["error"]["code"] == code


def test_a_valid_bearer_key_is_accepted(organization):
    _, key = make_api_key(organization)
    assert get_with(f"Bearer {key}").status_code == 200


def test_a_missing_key_is_401_with_bearer_challenge():
    assert_unauthorized(get_with(None), "not_authenticated")


def test_an_unknown_key_is_401():
    assert_unauthorized(get_with("Bearer abcdefgh.notarealsecret"), "authentication_failed")


def test_a_wrong_secret_with_a_real_prefix_is_401(organization):
    api_key, _ = make_api_key(organization)
    assert_unauthorized(get_with(f"Bearer {api_key.prefix}.wrong"), "authentication_failed")


def test_a_revoked_key_is_401(organization):
    api_key, key = make_api_key(organization)
    api_key.revoked = True
    api_key.save()
    assert_unauthorized(get_with(f"Bearer {key}"), "authentication_failed")


def test_an_expired_key_is_401(organization):
    _, key = make_api_key(organization, expiry_date=timezone.now() - dt.timedelta(days=1))
    assert_unauthorized(get_with(f"Bearer {key}"), "authentication_failed")


def test_a_key_of_an_inactive_organization_is_401(organization):
    _, key = make_api_key(organization)
    organization.is_active = False
    organization.save()
    assert_unauthorized(get_with(f"Bearer {key}"), "authentication_failed")


def test_another_scheme_is_not_accepted(organization):
    _, key = make_api_key(organization)
    assert_unauthorized(get_with(f"Api-Key {key}"), "not_authenticated")


def test_a_token_scheme_is_told_that_the_scheme_is_bearer(organization):
    _, key = make_api_key(organization)
    response = get_with(f"Token {key}")

    assert_unauthorized(response, "not_authenticated")
    assert response.json()["error"]["message"] == (
        "The Authorization scheme is Bearer, not Token: send `Authorization: Bearer <API key>`."
    )


def test_a_bare_bearer_is_told_to_add_the_key():
    response = get_with("Bearer")

    assert_unauthorized(response, "not_authenticated")
    assert "needs the API key after it" in response.json()["error"]["message"]


def test_a_bearer_without_a_key_is_401():
    assert_unauthorized(get_with("Bearer "), "authentication_failed")


def test_the_key_is_stored_hashed_with_only_its_prefix_in_clear(organization):
    api_key, key = make_api_key(organization)
    stored = OrganizationAPIKey.objects.get(pk=api_key.pk)
    prefix, _, secret = key.partition(".")
    assert stored.prefix == prefix
    assert secret not in stored.hashed_key
    assert secret not in stored.id
    assert stored.is_valid(key)


def test_the_first_request_records_the_last_use(organization):
    api_key, key = make_api_key(organization)
    get_with(f"Bearer {key}")
    assert OrganizationAPIKey.objects.get(pk=api_key.pk).last_used_at is not None


def test_the_last_use_is_written_at_most_once_a_minute(organization):
    _, key = make_api_key(organization)
    get_with(f"Bearer {key}")
    with CaptureQueriesContext(connection) as captured:
        get_with(f"Bearer {key}")
    assert not [query for query in captured if query["sql"].startswith("UPDATE")]


def test_keys_belong_to_one_organization(organization, other_organization):
    _, key = make_api_key(other_organization)
    from tests.orders.factories import make_customer

    make_customer(organization)
    assert get_with(f"Bearer {key}").json()["results"] == []
