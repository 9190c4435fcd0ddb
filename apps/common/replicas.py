"""Read replicas: which are in rotation, and where a heavy read goes.

A replica is in rotation while it answers and is at most DB_REPLICA_MAX_LAG_SECONDS behind the
primary. Each process watches its replicas from one daemon thread (`ReplicaMonitor`, started on
first use and after a fork) every DB_REPLICA_CHECK_SECONDS, over a connection of its own with
DB_REPLICA_CONNECT_TIMEOUT: a dead replica costs that thread a refused or timed-out connect, never
a request. A replica whose connection fails anywhere (the pool's connector, a checkout, a query)
opens its breaker (apps.common.breakers) and leaves the rotation at once; it comes back by itself
once the monitor reaches it again and its lag is within the limit.

`read_on_replica(read)` runs a read on a replica in rotation, or on the primary when there is
none; a replica that fails during the read is taken out and the read runs again on the primary,
so a replica's death costs the reads in flight at most DB_REPLICA_POOL_TIMEOUT.
"""

import dataclasses
import logging
import os
import random
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connections
from prometheus_client import Counter

from apps.common.breakers import breaker
from apps.common.database import close_connection, replica_aliases

logger = logging.getLogger(__name__)

PRIMARY = "default"
IN_ROTATION = "in_rotation"
LAGGING = "lagging"
DOWN = "down"
STATES = (IN_ROTATION, LAGGING, DOWN)
# A state older than this many check intervals is not trusted: the check is stuck.
STALE_CHECKS = 3

HEAVY_READS = Counter(
    "orders_heavy_reads_total",
    "Heavy reads (reports) by the database that answered them: a replica, or the primary.",
    ["alias"],
)
REPLICA_READ_FAILURES = Counter(
    "orders_replica_read_failures_total",
    "Heavy reads that failed on a replica and were run again on the primary, by replica.",
    ["alias"],
)

# The lag of a standby. Caught up (0) when it has replayed the primary's WAL position read just
# before, or, with the primary out of reach, everything it received; otherwise the age of the
# last transaction it replayed. (Comparing with its own receive position alone keeps a restarted
# standby "behind" until the primary next commits, and a cut-off one "caught up" forever.)
REPLICA_STATE_SQL = """
SELECT pg_is_in_recovery(),
       CASE WHEN %(primary_lsn)s::pg_lsn IS NOT NULL
                 AND pg_last_wal_replay_lsn() >= %(primary_lsn)s::pg_lsn THEN 0
            WHEN %(primary_lsn)s::pg_lsn IS NULL
                 AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())
       END
"""
PRIMARY_POSITION_SQL = "SELECT pg_current_wal_lsn()::text"


@dataclasses.dataclass(frozen=True)
class ReplicaState:
    alias: str
    state: str
    lag_seconds: float | None = None
    message: str = ""
    checked_at: float | None = None  # time.time() of the check

    @property
    def in_rotation(self):
        return self.state == IN_ROTATION


def classify(alias, in_recovery, lag_seconds):
    """The state a measurement puts a replica in."""
    limit = settings.DB_REPLICA_MAX_LAG_SECONDS
    checked_at = time.time()
    if not in_recovery:
        # A primary given as a replica (tests, a promoted standby) is as fresh as it gets.
        return ReplicaState(alias, IN_ROTATION, 0.0, "not in recovery (a primary?)", checked_at)
    if lag_seconds is None:
        return ReplicaState(alias, LAGGING, None, "has replayed nothing yet", checked_at)
    if lag_seconds > limit:
        message = f"lags {lag_seconds:.1f} s (limit {limit:g} s)"
        return ReplicaState(alias, LAGGING, round(lag_seconds, 3), message, checked_at)
    return ReplicaState(
        alias, IN_ROTATION, round(lag_seconds, 3), f"lags {lag_seconds:.1f} s", checked_at
    )


class ReplicaMonitor:
    """One thread per process checking every replica every DB_REPLICA_CHECK_SECONDS."""

    def __init__(self, aliases=replica_aliases, check_in_background=True):
        self.aliases = aliases
        self.check_in_background = check_in_background
        self._lock = threading.Lock()
        self._states = {}
        self._connections = {}
        self._started_pid = None
        self._stop = threading.Event()
        self._check_lock = threading.Lock()
        self.listeners: list[Callable[[dict], None]] = []

    def ensure_started(self):
        """Start this process's monitor if it has none and there are replicas; cheap."""
        if self._started_pid == os.getpid():
            return
        with self._lock:
            if self._started_pid == os.getpid():
                return
            if self._started_pid is not None:
                # A forked child inherits its parent's view and sockets: start from nothing.
                self._states = {}
                self._connections = {}
                self._stop = threading.Event()
            self._started_pid = os.getpid()
            if not self.aliases() or not self.check_in_background:
                return
            threading.Thread(
                target=self._run, args=(self._stop,), name="replica-monitor", daemon=True
            ).start()

    def stop(self):
        self._stop.set()

    def _run(self, stop):
        while not stop.is_set():
            try:
                self.check_all()
            except Exception:
                logger.exception("replica check failed")
            stop.wait(settings.DB_REPLICA_CHECK_SECONDS)

    def check_all(self):
        """Check every replica now; returns the states."""
        for alias in self.aliases():
            self.record(self.check(alias))
        states = self.states()
        for listener in list(self.listeners):
            try:
                listener(states)
            except Exception:
                logger.exception("replica state listener failed")
        return states

    def check(self, alias):
        """Measure `alias` now (its connection, its breaker); returns its state, not recorded."""
        try:
            with self._check_lock:
                in_recovery, lag_seconds = self._measure(alias)
        except Exception as error:
            self._drop_connection(alias)
            breaker(alias).record_failure(error)
            return ReplicaState(
                alias, DOWN, None, f"unreachable ({type(error).__name__})", time.time()
            )
        breaker(alias).record_success()
        state = classify(alias, in_recovery, lag_seconds)
        if state.in_rotation and not self._in_rotation(alias) and not self._pool_serves(alias):
            # psycopg_pool retries with a back-off of seconds: until it has reconnected, every
            # report would wait DB_REPLICA_POOL_TIMEOUT for it.
            message = "answers, but its connection pool has not reconnected yet"
            return ReplicaState(alias, DOWN, state.lag_seconds, message, state.checked_at)
        return state

    def _in_rotation(self, alias):
        with self._lock:
            state = self._states.get(alias)
        return state is not None and state.in_rotation

    @staticmethod
    def _pool_serves(alias):
        """Whether a request would get a connection of `alias` now (and the pool one to keep)."""
        try:
            connections[alias].ensure_connection()
        except DatabaseError:
            return False
        finally:
            close_connection(alias)
        return True

    def _measure(self, alias):
        if connections[alias].vendor != "postgresql":
            try:
                with connections[alias].cursor() as cursor:
                    cursor.execute("SELECT 1")
            finally:
                close_connection(alias)
            return True, 0.0
        primary_lsn = self._primary_position()
        connection = self._connection(alias)
        in_recovery, lag = connection.execute(
            REPLICA_STATE_SQL, {"primary_lsn": primary_lsn}
        ).fetchone()
        return in_recovery, None if lag is None else float(lag)

    def _connection(self, alias):
        connection = self._connections.get(alias)
        if connection is None or connection.closed:
            connection = self._connect(alias)
            self._connections[alias] = connection
        return connection

    def _primary_position(self):
        """The primary's current WAL position, or None while it is out of reach."""
        if breaker(PRIMARY).is_open or connections[PRIMARY].vendor != "postgresql":
            return None
        try:
            return self._connection(PRIMARY).execute(PRIMARY_POSITION_SQL).fetchone()[0]
        except Exception as error:
            self._drop_connection(PRIMARY)
            logger.debug("reading the primary's WAL position failed: %s", error)
            return None

    @staticmethod
    def _connect(alias):
        import psycopg

        parameters = connections[alias].get_connection_params()
        for driver_option in ("cursor_factory", "context", "prepare_threshold", "pool"):
            parameters.pop(driver_option, None)
        parameters.update(
            autocommit=True,
            connect_timeout=settings.DB_REPLICA_CONNECT_TIMEOUT,
            application_name="orders-service-replica-monitor",
        )
        return psycopg.connect(**parameters)

    def _drop_connection(self, alias):
        connection = self._connections.pop(alias, None)
        if connection is not None:
            try:
                connection.close()
            except Exception:
                logger.debug("closing the %s monitor connection failed", alias, exc_info=True)

    def record(self, state):
        with self._lock:
            previous = self._states.get(state.alias)
            self._states[state.alias] = state
        if previous is not None and previous.state != state.state:
            level = logging.INFO if state.in_rotation else logging.WARNING
            logger.log(
                level, "replica %s: %s -> %s (%s)", state.alias, previous.state, state.state,
                state.message,
            )  # fmt: skip

    def states(self):
        """The last known state of every replica: down while its breaker is open, and when its
        last check is too old (a server that accepts and never answers holds the check)."""
        with self._lock:
            known = dict(self._states)
        stale_before = time.time() - STALE_CHECKS * settings.DB_REPLICA_CHECK_SECONDS
        states = {}
        for alias in self.aliases():
            state = known.get(alias)
            gate = breaker(alias)
            if gate.is_open and (state is None or state.state != DOWN):
                state = ReplicaState(alias, DOWN, None, f"unreachable ({gate.last_error})")
            elif state is None:
                state = ReplicaState(alias, DOWN, None, "not checked yet")
            elif state.checked_at is not None and state.checked_at < stale_before:
                message = f"no answer to checks for {time.time() - state.checked_at:.0f} s"
                state = ReplicaState(alias, DOWN, state.lag_seconds, message, state.checked_at)
            states[alias] = state
        return states

    def mark_down(self, alias, error):
        breaker(alias).record_failure(error)
        self.record(ReplicaState(alias, DOWN, None, f"failed a read ({type(error).__name__})"))


monitor = ReplicaMonitor()


def replica_states():
    """Every replica's state, from this process's monitor (started if need be)."""
    monitor.ensure_started()
    return monitor.states()


def replicas_in_rotation():
    return [alias for alias, state in replica_states().items() if state.in_rotation]


def read_replica_alias():
    """A replica in rotation for a heavy read, or the primary when there is none."""
    if not monitor.aliases():
        return PRIMARY
    candidates = replicas_in_rotation()
    return random.choice(candidates) if candidates else PRIMARY  # noqa: S311 - load spreading


def read_on_replica(read, *, primary=False):
    """`read(alias)` on a replica in rotation (the primary if `primary` or none is).

    A replica that fails during the read leaves the rotation and the read runs on the primary.
    """
    alias = PRIMARY if primary else read_replica_alias()
    if alias != PRIMARY:
        try:
            result = read(alias)
        except (OperationalError, InterfaceError) as error:
            close_connection(alias)
            monitor.mark_down(alias, error)
            REPLICA_READ_FAILURES.labels(alias).inc()
            logger.warning(
                "read on %s failed (%s); reading the primary", alias, type(error).__name__
            )
        else:
            HEAVY_READS.labels(alias).inc()
            return result
    result = read(PRIMARY)
    HEAVY_READS.labels(PRIMARY).inc()
    return result


def export_counters_at_zero():
    for alias in (PRIMARY, *replica_aliases()):
        HEAVY_READS.labels(alias)
    for alias in replica_aliases():
        REPLICA_READ_FAILURES.labels(alias)


def sticky_seconds():
    """How long after a write its writer's heavy reads stay on the primary: at least
    DB_REPLICA_STICKY_SECONDS, and at least the lag of the replicas in rotation."""
    if not monitor.aliases():
        return settings.DB_REPLICA_STICKY_SECONDS
    lags = [
        state.lag_seconds
        for state in replica_states().values()
        if state.in_rotation and state.lag_seconds is not None
    ]
    return max([settings.DB_REPLICA_STICKY_SECONDS, *(lag + 1 for lag in lags)])
