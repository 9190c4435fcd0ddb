"""Guessing credentials: admin logins lock out per username and per address (django-axes), failed
API key attempts are limited per address, and each lockout is logged and counted once."""

import logging

import pytest
from django.contrib.auth import get_user_model
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from tests.orders.factories import make_api_key

pytestmark = pytest.mark.django_db

PASSWORD = "the-right-password-4kq8"
ATTACKER = "203.0.113.7"
ELSEWHERE = "198.51.100.20"
LOGGER = "apps.tenants.brute_force"


@pytest.fixture
def admin_user(db):
    return get_user_model().objects.create_superuser("admin", "admin@example.com", PASSWORD)


def log_in(client, username, password, address=ATTACKER):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


def is_signed_in(client):
    return "_auth_user_id" in client.session


def lockouts(kind):
    return REGISTRY.get_sample_value("orders_lockouts_total", {"kind": kind}) or 0


def lockout_lines(caplog):
    return [record for record in caplog.records if record.name == LOGGER]


def test_the_right_password_is_refused_after_thirty_wrong_ones(client, admin_user):
    for _ in range(30):
        log_in(client, "admin", "wrong")

    response = log_in(client, "admin", PASSWORD)

    assert response.status_code == 429
    assert not is_signed_in(client)


def test_a_username_is_locked_out_whatever_addresses_the_failures_came_from(
    client, admin_user, settings
):
    for number in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "admin", "wrong", address=f"203.0.113.{number + 1}")

    assert log_in(client, "admin", PASSWORD, address=ELSEWHERE).status_code == 429
    assert not is_signed_in(client)


def test_an_address_is_locked_out_whatever_usernames_it_tried(client, admin_user, settings):
    for number in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, f"someone-{number}", "wrong")

    assert log_in(client, "admin", PASSWORD).status_code == 429
    assert log_in(client, "admin", PASSWORD, address=ELSEWHERE).status_code == 302


def test_a_locked_out_login_says_when_to_retry(client, admin_user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "admin", "wrong")

    response = log_in(client, "admin", PASSWORD)

    assert int(response["Retry-After"]) == settings.AXES_COOLOFF_TIME.total_seconds()


def test_fewer_failures_than_the_limit_do_not_lock_out(client, admin_user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "admin", "wrong")

    assert log_in(client, "admin", PASSWORD).status_code == 302
    assert is_signed_in(client)


def test_an_admin_login_lockout_is_logged_and_counted_once(client, admin_user, settings, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    before = lockouts("admin_login")

    for _ in range(settings.AXES_FAILURE_LIMIT + 3):
        log_in(client, "admin", "wrong")

    assert lockouts("admin_login") - before == 1
    [line] = lockout_lines(caplog)
    assert line.levelno == logging.WARNING
    assert "'admin'" in line.getMessage()
    assert ATTACKER in line.getMessage()


def api_get(key, address=ATTACKER):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client.get("/api/v1/products/", REMOTE_ADDR=address)


@pytest.fixture
def valid_key(organization):
    return make_api_key(organization)[1]


def test_an_address_past_the_failed_api_key_rate_gets_429_even_with_a_valid_key(
    valid_key, settings
):
    settings.API_KEY_FAILURE_RATE = "3/minute"
    assert [api_get("wrong-key").status_code for _ in range(3)] == [401, 401, 401]

    response = api_get(valid_key)

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    assert 0 < int(response["Retry-After"]) <= 60


def test_failed_api_keys_from_one_address_do_not_limit_another(valid_key, settings):
    settings.API_KEY_FAILURE_RATE = "3/minute"
    for _ in range(5):
        api_get("wrong-key")

    assert api_get(valid_key, address=ELSEWHERE).status_code == 200


def test_an_api_key_lockout_is_logged_and_counted_once(db, settings, caplog):
    settings.API_KEY_FAILURE_RATE = "3/minute"
    caplog.set_level(logging.INFO, logger=LOGGER)
    before = lockouts("api_key")

    for _ in range(6):
        api_get("wrong-key")

    assert lockouts("api_key") - before == 1
    [line] = lockout_lines(caplog)
    assert line.levelno == logging.WARNING
    assert ATTACKER in line.getMessage()


@pytest.mark.parametrize(
    ("forwarded_for", "proxies", "counted_as"),
    [
        ("198.51.100.20", 0, ATTACKER),
        ("198.51.100.20", 1, "198.51.100.20"),
        ("10.9.9.9, 198.51.100.20", 1, "198.51.100.20"),
        ("10.9.9.9, 198.51.100.20", 2, "10.9.9.9"),
    ],
)
def test_the_client_address_is_the_one_the_outermost_trusted_proxy_saw(
    settings, caplog, forwarded_for, proxies, counted_as
):
    settings.API_KEY_FAILURE_RATE = "1/minute"
    settings.TRUSTED_PROXY_COUNT = proxies
    caplog.set_level(logging.INFO, logger=LOGGER)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer wrong-key")

    client.get("/api/v1/products/", REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR=forwarded_for)

    [line] = lockout_lines(caplog)
    assert line.getMessage().split("address ")[1].startswith(f"{counted_as},")
