"""django-redis' client, with failed calls counted and an outage logged when it starts and ends.

The cache fails open (IGNORE_EXCEPTIONS): a call that cannot reach Redis returns a miss. django-
redis can log each such call (DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS), with its traceback: at a few
dozen requests a second an outage of seconds wrote thousands of ERROR lines. This client logs
once per process when calls start failing (WARNING) and once when one succeeds again (INFO, with
how many failed), the way the health checks log their outcomes (CheckOutcomeLog), and counts
every failed call in orders_cache_failures_total{operation}.

A call counts once: the client's operations call one another (add calls set, set_many calls set
on a pipeline), so only the outermost operation of a thread is observed. Generators (iter_keys,
sscan_iter) fail while they are consumed, outside the call, and are not observed.
"""

import functools
import logging
import threading

from django_redis.cache import RedisCache
from django_redis.client import DefaultClient
from django_redis.exceptions import ConnectionInterrupted

from apps.observability.metrics.registry import CACHE_FAILURES

logger = logging.getLogger(__name__)


class CacheOutageLog:
    """Whether this process's cache calls are failing; logs only when that changes."""

    def __init__(self):
        self._lock = threading.Lock()
        self._failed_calls = 0

    def failed(self, operation, error):
        CACHE_FAILURES.labels(operation).inc()
        with self._lock:
            self._failed_calls += 1
            starts = self._failed_calls == 1
        if starts:
            cause = error.__cause__ or error
            logger.warning(
                "cache unavailable: %s failed (%s: %s); cache calls fail open until it answers",
                operation,
                type(cause).__name__,
                cause,
            )

    def succeeded(self):
        if not self._failed_calls:  # the usual case, without taking the lock
            return
        with self._lock:
            failed_calls, self._failed_calls = self._failed_calls, 0
        if failed_calls:
            logger.info("cache available again after %d failed call(s)", failed_calls)


outage_log = CacheOutageLog()
_depth = threading.local()


def _observed(operation, method):
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        outermost = not getattr(_depth, "value", 0)
        _depth.value = getattr(_depth, "value", 0) + 1
        try:
            result = method(self, *args, **kwargs)
        except ConnectionInterrupted as error:
            if outermost:
                outage_log.failed(operation, error)
            raise
        finally:
            _depth.value -= 1
        if outermost:
            outage_log.succeeded()
        return result

    return call


class ObservedClient(DefaultClient):
    """DefaultClient whose operations, as the cache backend calls them, are observed."""


# Every operation the cache backend delegates to its client (close only disconnects).
OPERATIONS = sorted(
    name
    for name in vars(RedisCache)
    if not name.startswith("_") and name != "close" and callable(getattr(DefaultClient, name, None))
)
for _operation in OPERATIONS:
    setattr(ObservedClient, _operation, _observed(_operation, getattr(DefaultClient, _operation)))
