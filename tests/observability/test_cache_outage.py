"""A Redis outage as the cache reports it: one log line when calls start failing, one when they
succeed again, and every failed call counted by operation.

The cache is the project's own Redis configuration (project.settings.cache_settings) pointed at
a port nothing listens on, or at a private Redis that is started once the outage has been seen.
"""

import logging

import pytest
from django.core.cache import caches
from prometheus_client import REGISTRY

from project.settings import cache_settings
from tests.observability.conftest import REDIS_SERVER, ThrowawayRedis
from tests.processes import free_port

CACHE_LOGGER = "apps.observability.metrics.cache"
CALLS = 20


@pytest.fixture(autouse=True)
def _fresh_outage_state(monkeypatch):
    """Whether the cache is failing is remembered per process; each test starts from working."""
    from apps.observability.metrics import cache as observed_cache

    monkeypatch.setattr(observed_cache, "outage_log", observed_cache.CacheOutageLog())


def use_cache_at(settings, redis_url):
    settings.CACHES = {**settings.CACHES, "outage": cache_settings(redis_url)["default"]}
    return caches["outage"]


def failures_counted(operation):
    return REGISTRY.get_sample_value("orders_cache_failures_total", {"operation": operation}) or 0


def warnings_and_errors(caplog):
    return [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_a_cache_outage_is_logged_once_when_it_starts_without_a_traceback(settings, caplog):
    cache = use_cache_at(settings, f"redis://127.0.0.1:{free_port()}/0")
    caplog.set_level(logging.INFO)

    for number in range(CALLS):
        cache.set(f"key-{number}", number)
        assert cache.get(f"key-{number}") is None

    [line] = warnings_and_errors(caplog)
    assert line.name == CACHE_LOGGER
    assert line.getMessage().startswith("cache unavailable: set failed (ConnectionError")
    assert line.exc_info is None


def test_every_failed_cache_call_is_counted_by_operation(settings):
    cache = use_cache_at(settings, f"redis://127.0.0.1:{free_port()}/0")
    before = {operation: failures_counted(operation) for operation in ("get", "set", "incr")}

    for number in range(CALLS):
        cache.get(f"key-{number}")
        cache.set(f"key-{number}", number)
    cache.incr("counter")

    assert failures_counted("get") - before["get"] == CALLS
    assert failures_counted("set") - before["set"] == CALLS
    assert failures_counted("incr") - before["incr"] == 1


def test_an_add_counts_once_though_it_sets_underneath(settings):
    cache = use_cache_at(settings, f"redis://127.0.0.1:{free_port()}/0")
    before_add, before_set = failures_counted("add"), failures_counted("set")

    cache.add("key", 1)

    assert (failures_counted("add") - before_add, failures_counted("set") - before_set) == (1, 0)


@pytest.mark.system
def test_the_end_of_an_outage_is_logged_once_with_the_calls_that_failed(settings, caplog, tmp_path):
    if REDIS_SERVER is None:
        pytest.skip("redis-server not found on PATH")
    redis = ThrowawayRedis(tmp_path)
    cache = use_cache_at(settings, redis.url)
    caplog.set_level(logging.INFO, logger=CACHE_LOGGER)
    for number in range(CALLS):
        cache.get(f"key-{number}")

    redis.start()
    try:
        for number in range(CALLS):
            cache.set(f"key-{number}", number)
            assert cache.get(f"key-{number}") == number
    finally:
        redis.stop()

    messages = [record.getMessage() for record in caplog.records if record.name == CACHE_LOGGER]
    assert messages[1:] == [f"cache available again after {CALLS} failed call(s)"]
