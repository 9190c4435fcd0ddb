"""Health checks behind /ready and /health-detailed, and the runner that bounds them in time.

The checks are django-health-check 4.x `HealthCheck` dataclasses: `run()` raises
`ServiceUnavailable` when a dependency is down and `ServiceWarning` when it works but needs
attention, and may return a dict of details for /health-detailed.

They are not run through `HealthCheckView`: that view is async, so under gunicorn's WSGI workers
it runs in a fresh event loop whose shutdown waits for every executor thread, so a check stuck
on a database that never answers holds the response until the driver gives up (the connect and
pool timeouts, 5 s and 10 s here), and it answers 500 on any failure or warning. `run_checks`
runs each check in its own daemon thread and stops waiting at one shared deadline
(HEALTH_CHECK_TIMEOUT_SECONDS); a check still running when the next probe arrives is joined,
not started again, so a hanging dependency costs one thread per check, not one per probe.

A check that touches the ORM in its thread closes that thread's connection in `finally`: with
the psycopg pool an unclosed connection never returns to the pool, and after `DB_POOL_MAX_SIZE`
probes every query of the worker would wait for one.

A check's failure is logged when it starts and its recovery when it ends (CheckOutcomeLog), not
on every probe: the kubelet probes every few seconds in every pod for as long as an outage lasts.
"""

import asyncio
import dataclasses
import inspect
import logging
import shutil
import threading
import time
import uuid
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import ClassVar

from django.conf import settings
from django.core.cache import caches
from django.db import DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor
from health_check import Cache, Database, HealthCheck
from health_check.exceptions import HealthCheckException, ServiceUnavailable, ServiceWarning

from apps.common import replicas
from apps.common.database import close_connection, pool_statistics, replica_aliases
from apps.observability.metrics.resources import (
    log_directory,
    memory_usage,
    process_resident_bytes,
)

logger = logging.getLogger(__name__)

OK = "ok"
WARNING = "warning"  # works, needs attention (disk, memory); never fails a probe
DEGRADED = "degraded"  # an optional dependency is down; the service still answers
FAILING = "failing"  # a required dependency is down; readiness answers 503

DISK_WARNING_PERCENT = 90.0
MEMORY_WARNING_PERCENT = 90.0


@dataclasses.dataclass
class DatabaseCheck(Database):
    """SELECT 1 on the database, through the pool like any query of the process."""

    required: ClassVar[bool] = True

    @property
    def name(self):
        return "database" if self.alias == "default" else f"database:{self.alias}"

    def run(self):
        try:
            super().run()
        finally:
            close_connection(self.alias)
        return {"vendor": connections[self.alias].vendor}

    def describe_delay(self):
        """Why the check may still be waiting: the pool has no connection to give."""
        statistics = pool_statistics(self.alias, open_pool=True)
        if statistics is None:
            return ""
        return (
            f" (pool: {statistics['pool_available']} of {statistics['pool_size']} connections"
            f" free, {statistics.get('requests_waiting', 0)} waiting)"
        )


# Once every migration is applied, this process never needs to ask again.
_migrated_aliases = set()


@dataclasses.dataclass
class MigrationsCheck(HealthCheck):
    """Every migration on disk is applied; remembered once true."""

    alias: str = "default"
    required: ClassVar[bool] = True

    @property
    def name(self):
        return "migrations" if self.alias == "default" else f"migrations:{self.alias}"

    def run(self):
        if self.alias in _migrated_aliases:
            return {"message": "all applied"}
        try:
            executor = MigrationExecutor(connections[self.alias])
            plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        except DatabaseError as error:
            raise ServiceUnavailable(f"cannot read migrations ({type(error).__name__})") from error
        finally:
            close_connection(self.alias)
        if plan:
            raise ServiceUnavailable(f"{len(plan)} migration(s) not applied")
        _migrated_aliases.add(self.alias)
        return {"message": "all applied"}


@dataclasses.dataclass
class ConnectionPoolCheck(HealthCheck):
    """The connection pool is not exhausted: requests wait while every connection is in use."""

    alias: str = "default"
    required: ClassVar[bool] = True

    @property
    def name(self):
        return "database_pool" if self.alias == "default" else f"database_pool:{self.alias}"

    def run(self):
        statistics = pool_statistics(self.alias, open_pool=True)
        if statistics is None:
            return {"message": "no pool configured"}
        in_use = statistics["pool_size"] - statistics["pool_available"]
        waiting = statistics.get("requests_waiting", 0)
        message = f"{in_use}/{statistics['pool_max']} in use, {waiting} waiting"
        if waiting and in_use >= statistics["pool_max"]:
            raise ServiceUnavailable(f"exhausted: {message}")
        return {"message": message, "statistics": statistics}


@dataclasses.dataclass
class CacheCheck(Cache):
    """A value written to the cache reads back.

    The cache fails open (django-redis IGNORE_EXCEPTIONS): a failed write or read is silent, so
    the round trip is what tells whether the cache works. Synchronous on purpose: the async cache
    methods would run in asgiref's one shared thread, which a hanging Redis would block.
    """

    required: ClassVar[bool] = False

    @property
    def name(self):
        return "cache" if self.alias == "default" else f"cache:{self.alias}"

    def run(self):
        cache = caches[self.alias]
        key = f"{self.key_prefix}:{uuid.uuid4().hex}"
        value = uuid.uuid4().hex
        cache.set(key, value, timeout=self.timeout.total_seconds())
        if cache.get(key) != value:
            raise ServiceUnavailable("a value written was not read back (cache unreachable?)")
        cache.delete(key)
        return {"backend": type(cache).__name__}


@dataclasses.dataclass
class ReplicaCheck(HealthCheck):
    """A read replica answers and is not too far behind: the state that takes it in and out of
    the rotation (apps.common.replicas), measured now. Down or lagging degrades reads only."""

    alias: str
    required: ClassVar[bool] = False

    @property
    def name(self):
        return self.alias

    def run(self):
        replicas.monitor.ensure_started()
        state = replicas.monitor.check(self.alias)
        replicas.monitor.record(state)
        details = {
            "state": state.state,
            "lag_seconds": state.lag_seconds,
            "lag_limit_seconds": settings.DB_REPLICA_MAX_LAG_SECONDS,
            "pool": pool_statistics(self.alias),
        }
        if not state.in_rotation:
            raise ServiceUnavailable(f"{state.state}, out of rotation: {state.message}")
        return {**details, "message": f"in rotation, {state.message}"}


@dataclasses.dataclass
class DiskCheck(HealthCheck):
    """Free space where the service writes its logs (warning only)."""

    path: str = dataclasses.field(default_factory=log_directory)
    max_usage_percent: float = DISK_WARNING_PERCENT
    required: ClassVar[bool] = False

    name = "disk"

    def run(self):
        usage = shutil.disk_usage(self.path)
        percent = round(100 * usage.used / usage.total, 1)
        message = f"{percent} % used, {usage.free / 2**30:.1f} GiB free"
        if percent >= self.max_usage_percent:
            raise ServiceWarning(message)
        return {"message": message, "path": self.path}


@dataclasses.dataclass
class MemoryCheck(HealthCheck):
    """Memory used against the container limit, or the host's memory (warning only)."""

    max_usage_percent: float = MEMORY_WARNING_PERCENT
    required: ClassVar[bool] = False

    name = "memory"

    def run(self):
        details = {"process_resident_bytes": process_resident_bytes()}
        usage = memory_usage()
        if usage is None:
            return {**details, "message": "memory usage not available on this system"}
        used, limit = usage
        percent = round(100 * used / limit, 1)
        message = f"{percent} % of {limit / 2**30:.1f} GiB used"
        if percent >= self.max_usage_percent:
            raise ServiceWarning(message)
        return {**details, "message": message}


@dataclasses.dataclass
class CheckResult:
    name: str
    status: str
    message: str
    time_ms: float
    details: dict = dataclasses.field(default_factory=dict)

    def as_json(self, with_details=False):
        data = {"status": self.status, "message": self.message, "time_ms": self.time_ms}
        if with_details and self.details:
            data["details"] = self.details
        return data


@dataclasses.dataclass
class _Outcome:
    details: dict | None
    error: BaseException | None
    seconds: float


_in_flight = {}
_in_flight_lock = threading.Lock()


def _execute(check, future, key):
    started = time.monotonic()
    try:
        if inspect.iscoroutinefunction(check.run):
            details = asyncio.run(check.run())
        else:
            details = check.run()
        outcome = _Outcome(details or {}, None, time.monotonic() - started)
    except BaseException as error:  # reported as the check's result
        outcome = _Outcome(None, error, time.monotonic() - started)
    finally:
        with _in_flight_lock:
            if _in_flight.get(key) is future:
                del _in_flight[key]
    future.set_result(outcome)


def _start(check):
    """A future for the check's outcome: a new thread, or the one still running from before."""
    key = repr(check)
    with _in_flight_lock:
        future = _in_flight.get(key)
        if future is None:
            future = Future()
            _in_flight[key] = future
            threading.Thread(
                target=_execute,
                args=(check, future, key),
                name=f"health-check-{check.name}",
                daemon=True,
            ).start()
    return future


class CheckOutcomeLog:
    """Logs a check's outcome when it changes in this process, not on every probe.

    When a check starts failing: WARNING with its message (INFO for an optional check, which
    only degrades the service), or ERROR with the traceback when it raised something unexpected.
    When it passes again: INFO, with the message it failed with. The same approach as the probe
    middleware's ReadinessLog, per check; the message is not part of the state, because some
    change on every probe (a replica's lag, the pool's figures while a check times out).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._failing = {}  # check name -> the message it started failing with

    def observe(self, check, result, error=None):
        failing = result.status in (FAILING, DEGRADED)
        with self._lock:
            previous = self._failing.get(check.name)
            if failing:
                self._failing.setdefault(check.name, result.message)
            else:
                self._failing.pop(check.name, None)
        if failing and previous is None:
            if error is None or isinstance(error, HealthCheckException):
                level = logging.WARNING if check.required else logging.INFO
                logger.log(level, "health check %s: %s", check.name, result.message)
            else:
                logger.error("health check %s raised", check.name, exc_info=error)
        elif not failing and previous is not None:
            logger.info("health check %s: passes again (was: %s)", check.name, previous)


outcome_log = CheckOutcomeLog()


def _result(check, outcome):
    time_ms = round(outcome.seconds * 1000, 1)
    failed_status = FAILING if check.required else DEGRADED
    if outcome.error is None:
        details = dict(outcome.details)
        return CheckResult(check.name, OK, details.pop("message", "ok"), time_ms, details)
    if isinstance(outcome.error, ServiceWarning):
        return CheckResult(check.name, WARNING, outcome.error.message, time_ms)
    if isinstance(outcome.error, HealthCheckException):
        return CheckResult(check.name, failed_status, outcome.error.message, time_ms)
    return CheckResult(
        check.name, failed_status, f"unexpected error ({type(outcome.error).__name__})", time_ms
    )


def run_checks(checks, timeout=None):
    """Run the checks concurrently and return their results once all are done or time is up."""
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS if timeout is None else timeout
    started = time.monotonic()
    deadline = started + timeout
    futures = [(check, _start(check)) for check in checks]
    results = []
    for check, future in futures:
        try:
            outcome = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeoutError:
            waited_ms = round((time.monotonic() - started) * 1000, 1)
            status = FAILING if check.required else DEGRADED
            describe_delay = getattr(check, "describe_delay", lambda: "")
            message = f"timed out after {timeout:g} s{describe_delay()}"
            result, error = CheckResult(check.name, status, message, waited_ms), None
        else:
            result, error = _result(check, outcome), outcome.error
        outcome_log.observe(check, result, error)
        results.append(result)
    return results


def overall_status(results):
    statuses = {result.status for result in results}
    if FAILING in statuses:
        return FAILING
    if DEGRADED in statuses:
        return DEGRADED
    if WARNING in statuses:
        return WARNING
    return OK


def readiness_checks():
    """What decides whether this process should receive traffic."""
    return [
        DatabaseCheck(),
        MigrationsCheck(),
        ConnectionPoolCheck(),
        CacheCheck(),
        *(ReplicaCheck(alias) for alias in replica_aliases()),
    ]


def detailed_checks():
    return [*readiness_checks(), DiskCheck(), MemoryCheck()]
