"""Connection breakers: a failed connection shortens every later wait for one, until a
connection succeeds again."""

import psycopg
import pytest
from django.db import OperationalError
from django.test import override_settings
from psycopg_pool import ConnectionPool, PoolTimeout

from apps.common import breakers
from tests.processes import free_port


@pytest.fixture(autouse=True)
def fresh_breakers():
    breakers.reset_breakers()
    yield
    breakers.reset_breakers()


def refused_conninfo():
    """A PostgreSQL address where nothing listens."""
    return f"host=127.0.0.1 port={free_port()} user=postgres dbname=none connect_timeout=2"


def test_a_failed_connection_opens_the_breaker_and_a_success_closes_it():
    gate = breakers.breaker("default")
    gate.record_failure(OperationalError("connection refused"))
    assert gate.is_open
    assert "connection refused" in gate.last_error

    gate.record_success()
    assert not gate.is_open


@override_settings(DB_POOL_TIMEOUT=10, DB_POOL_OUTAGE_TIMEOUT=0.5, DB_REPLICA_POOL_TIMEOUT=1)
def test_checkouts_wait_the_pool_timeout_until_the_server_is_known_down():
    assert breakers.checkout_timeout("default") == 10
    assert breakers.checkout_timeout("replica_1") == 1

    breakers.breaker("default").record_failure(OperationalError("connection refused"))

    assert breakers.checkout_timeout("default") == 0.5
    assert breakers.checkout_timeout("replica_1") == 1


def test_the_pools_own_connection_attempts_feed_the_breaker():
    connection_class = breakers.breaker_connection_class("replica_9")

    with pytest.raises(psycopg.OperationalError):
        connection_class.connect(refused_conninfo())

    assert breakers.breaker("replica_9").is_open


@override_settings(DB_POOL_TIMEOUT=60, DB_POOL_OUTAGE_TIMEOUT=0.2)
def test_a_checkout_from_a_pool_whose_server_refuses_gives_up_naming_the_outage():
    pool = ConnectionPool(
        refused_conninfo(),
        min_size=0,
        max_size=2,
        open=True,
        connection_class=breakers.breaker_connection_class("outage"),
        reconnect_timeout=1,
    )
    try:
        with pytest.raises(PoolTimeout, match="database outage unreachable"):
            breakers.checkout(pool, "outage")
    finally:
        pool.close()
