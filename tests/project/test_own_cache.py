"""The tests clear only their own keys in the Redis they are given (tests/own_cache.py)."""

import uuid

import pytest
from django.conf import settings
from django.core.cache import cache
from django_redis import get_redis_connection

from tests.own_cache import clear_own_cache

pytestmark = pytest.mark.skipif(
    not settings.REDIS_URL, reason="runs in the Redis pass (REDIS_URL set)"
)


@pytest.fixture
def foreign_keys():
    """Keys someone else keeps in the same Redis database: a bare one, and one a `make run`
    service on that database writes (prefix `orders`)."""
    redis = get_redis_connection("default")
    marker = uuid.uuid4().hex
    keys = [f"someone-else:{marker}", f"orders:1:{marker}"]
    for key in keys:
        redis.set(key, "keep me")
    yield redis, keys
    redis.delete(*keys)


def test_clearing_the_tests_cache_leaves_foreign_keys_in_the_redis_database(foreign_keys):
    redis, keys = foreign_keys
    cache.set("written-by-a-test", "gone soon")

    clear_own_cache()

    assert cache.get("written-by-a-test") is None
    assert [redis.get(key) for key in keys] == [b"keep me", b"keep me"]
