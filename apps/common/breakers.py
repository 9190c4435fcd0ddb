"""Connection breakers: what this process knows about each database server's reachability.

A breaker per alias opens on the first failed connection attempt, whoever made it: the psycopg
pool's background connector (through `breaker_connection_class`), a checkout, or the replica
monitor. It closes on the next successful connection. While it is open:

- a checkout from the pool waits at most DB_POOL_OUTAGE_TIMEOUT instead of DB_POOL_TIMEOUT: the
  pool already knows the server is gone, and every thread waiting out the full timeout is what
  turned an outage into minutes of hung requests. The short wait still queues for a connection,
  which makes the pool try to connect again, so the first connection after the server returns
  closes the breaker without a restart;
- a replica is out of rotation (apps.common.replicas), so its reads go to the primary without
  touching it.

psycopg_pool retries a failed connection in the background with its own back-off; a checkout
that was already waiting when the server went away would wait out its whole timeout, so
`checkout` waits in slices of DB_POOL_OUTAGE_TIMEOUT and gives up at the first slice that ends
with the breaker open.

Hand-written rather than pybreaker or circuitbreaker: those count failures of the calls made
through them, while here most failures are seen by the pool's own threads, and "open" must mean
a short wait that still lets the pool reconnect, not an immediate refusal.
"""

import functools
import logging
import threading
import time

from django.conf import settings

logger = logging.getLogger(__name__)


class ConnectionBreaker:
    """Open while connections to one database server fail, in this process."""

    def __init__(self, alias):
        self.alias = alias
        self._lock = threading.Lock()
        self.opened_at = None
        self.failures = 0
        self.last_error = ""

    @property
    def is_open(self):
        return self.opened_at is not None

    def record_failure(self, error):
        with self._lock:
            self.failures += 1
            self.last_error = f"{type(error).__name__}: {str(error).strip()[:200]}"
            opened = self.opened_at is None
            if opened:
                self.opened_at = time.monotonic()
        if opened:
            logger.warning("database %s unreachable: %s", self.alias, self.last_error)

    def record_success(self):
        if self.opened_at is None:
            return
        with self._lock:
            opened_at, self.opened_at = self.opened_at, None
            failures, self.failures = self.failures, 0
        if opened_at is not None:
            logger.info(
                "database %s reachable again after %.1f s (%d failed attempts)",
                self.alias,
                time.monotonic() - opened_at,
                failures,
            )


_breakers = {}
_breakers_lock = threading.Lock()


def breaker(alias):
    """This process's breaker for `alias` (one per alias, created on first use)."""
    found = _breakers.get(alias)
    if found is None:
        with _breakers_lock:
            found = _breakers.setdefault(alias, ConnectionBreaker(alias))
    return found


def all_breakers():
    return {alias: breaker(alias) for alias in settings.DATABASES}


def reset_breakers():
    """Forget every breaker's state (between tests: the breakers are per process)."""
    with _breakers_lock:
        _breakers.clear()


@functools.cache
def breaker_connection_class(alias):
    """A psycopg connection class whose connection attempts feed the breaker of `alias`.

    Given to the pool as its `connection_class`, so that the pool's background reconnection
    attempts, not only the requests', open and close the breaker.
    """
    import psycopg

    class BreakerConnection(psycopg.Connection):
        @classmethod
        def connect(cls, *args, **kwargs):
            try:
                connection = super().connect(*args, **kwargs)
            except psycopg.OperationalError as error:
                breaker(alias).record_failure(error)
                raise
            breaker(alias).record_success()
            return connection

    BreakerConnection.__name__ = BreakerConnection.__qualname__ = f"BreakerConnection_{alias}"
    return BreakerConnection


def checkout_timeout(alias):
    """How long a request may wait for a pooled connection of `alias` right now."""
    if breaker(alias).is_open:
        return settings.DB_POOL_OUTAGE_TIMEOUT
    if alias.startswith("replica_"):
        return settings.DB_REPLICA_POOL_TIMEOUT
    return settings.DB_POOL_TIMEOUT


def checkout(pool, alias):
    """A connection from `pool`, waiting in slices so that an outage ends the wait early."""
    from psycopg_pool import PoolTimeout

    timeout = checkout_timeout(alias)
    slice_seconds = settings.DB_POOL_OUTAGE_TIMEOUT
    started = time.monotonic()
    deadline = started + timeout
    while True:
        remaining = deadline - time.monotonic()
        try:
            return pool.getconn(timeout=max(0.01, min(remaining, slice_seconds)))
        except PoolTimeout:
            gate = breaker(alias)
            if gate.is_open:
                raise PoolTimeout(
                    f"database {alias} unreachable ({gate.last_error}); "
                    f"gave up after {time.monotonic() - started:.2f} s"
                ) from None
            if time.monotonic() >= deadline:
                raise PoolTimeout(f"couldn't get a connection after {timeout:.2f} sec") from None
