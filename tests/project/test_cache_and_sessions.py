"""The cache fails open: with Redis unreachable, pages and logins keep working. Its client is
redis-py with hiredis."""

import pytest
from django.conf import settings
from django.contrib.sessions.backends.cached_db import KEY_PREFIX
from django.core.cache import cache
from django.test import override_settings
from redis._parsers import _HiredisParser
from redis.connection import HiredisRespSerializer

from project.settings import cache_settings
from tests.processes import free_port

on_redis = pytest.mark.skipif(
    not settings.REDIS_URL, reason="runs in the Redis pass (REDIS_URL set)"
)


@pytest.fixture
def unreachable_redis():
    """Redis settings pointing at a local port where nothing listens."""
    with override_settings(CACHES=cache_settings(f"redis://127.0.0.1:{free_port()}/0")):
        yield


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user(
        "ops", password="correct horse battery staple", is_staff=True, is_superuser=True
    )


def log_in(client):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": "ops", "password": "correct horse battery staple"},
    )


@pytest.mark.django_db
def test_login_page_is_served_while_redis_is_unreachable(client, unreachable_redis):
    assert client.get("/admin/login/").status_code == 200


@pytest.mark.django_db
def test_staff_can_log_in_and_stay_logged_in_while_redis_is_unreachable(
    client, staff_user, unreachable_redis
):
    assert log_in(client).status_code == 302
    response = client.get("/admin/")
    assert response.status_code == 200
    assert response.context["user"] == staff_user


@pytest.mark.django_db
def test_cache_reads_miss_instead_of_raising_while_redis_is_unreachable(unreachable_redis):
    cache.set("greeting", "hello")
    assert cache.get("greeting") is None


@on_redis
def test_cache_round_trips_through_redis():
    cache.set("round-trip", {"answer": 42}, timeout=30)
    assert cache.get("round-trip") == {"answer": 42}
    assert cache.client.get_client().exists(cache.make_key("round-trip")) == 1
    cache.delete("round-trip")


@on_redis
@pytest.mark.django_db
def test_sessions_are_cached_in_redis(client, staff_user):
    log_in(client)
    session_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert cache.get(KEY_PREFIX + session_key) is not None


def test_redis_replies_are_parsed_and_commands_packed_by_hiredis(unreachable_redis):
    # redis-py falls back to its Python parser and packer, silently, when hiredis is missing or
    # older than it supports.
    connection = cache.client.get_client(write=True).connection_pool.make_connection()
    assert isinstance(connection._parser, _HiredisParser)
    assert isinstance(connection._command_packer, HiredisRespSerializer)
