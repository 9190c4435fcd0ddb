"""Gauges of the resources the service can run out of, and of its replicas.

Under gunicorn's multiprocess mode prometheus-client's process collector exports nothing (it
reads the scraping process only), so every worker writes its own figures here, labelled by pid
(`liveall`: a dead worker's series disappear with its files, removed by gunicorn's child_exit
hook). Figures about something shared (the container's memory, the disk, PostgreSQL's
connections, the replicas) are the same in every process and exported once (`livemax`).

They are refreshed when /metrics is scraped (the scraping worker), by the background flusher
(every worker, every TELEMETRY_FLUSH_SECONDS; the only one that asks PostgreSQL for its
connections: a scrape runs no query), and the replica gauges after every check of the replica
monitor (apps.common.replicas).
"""

import logging
import os
import resource
import shutil

from django.conf import settings
from django.db import DatabaseError, connections
from prometheus_client import Gauge

from apps.common import replicas
from apps.common.breakers import all_breakers, breaker
from apps.common.database import all_pool_statistics

logger = logging.getLogger(__name__)

WORKER_CPU_SECONDS = Gauge(
    "orders_worker_cpu_seconds",
    "CPU time (user and system) this worker process has used, by pid; rate() gives its load.",
    multiprocess_mode="liveall",
)
WORKER_RESIDENT_MEMORY = Gauge(
    "orders_worker_resident_memory_bytes",
    "Resident memory of this worker process, by pid.",
    multiprocess_mode="liveall",
)
WORKER_OPEN_FDS = Gauge(
    "orders_worker_open_fds",
    "Open file descriptors of this worker process, by pid.",
    multiprocess_mode="liveall",
)
WORKER_MAX_FDS = Gauge(
    "orders_worker_max_fds",
    "File descriptor limit (soft RLIMIT_NOFILE) of this worker process, by pid.",
    multiprocess_mode="liveall",
)
WORKER_POOL_SIZE = Gauge(
    "orders_worker_db_pool_size",
    "Connections this worker's pool has open or is opening, by pid and alias.",
    ["alias"],
    multiprocess_mode="liveall",
)
WORKER_POOL_IN_USE = Gauge(
    "orders_worker_db_pool_in_use",
    "Connections of this worker's pool lent to a thread, by pid and alias.",
    ["alias"],
    multiprocess_mode="liveall",
)
WORKER_POOL_WAITING = Gauge(
    "orders_worker_db_pool_requests_waiting",
    "Threads of this worker waiting for a pooled connection, by pid and alias.",
    ["alias"],
    multiprocess_mode="liveall",
)
WORKER_POOL_MAX = Gauge(
    "orders_worker_db_pool_max",
    "Ceiling of this worker's pool (DB_POOL_MAX_SIZE), by pid and alias.",
    ["alias"],
    multiprocess_mode="liveall",
)
MEMORY_USED = Gauge(
    "orders_memory_used_bytes",
    "Memory used by the container (cgroup v2), or by the host without a cgroup limit.",
    multiprocess_mode="livemax",
)
MEMORY_LIMIT = Gauge(
    "orders_memory_limit_bytes",
    "Memory limit of the container (cgroup v2), or the host's memory without one.",
    multiprocess_mode="livemax",
)
DISK_FREE = Gauge(
    "orders_disk_free_bytes",
    "Free space on the filesystem the service writes its logs to, by path.",
    ["path"],
    multiprocess_mode="livemax",
)
DISK_SIZE = Gauge(
    "orders_disk_size_bytes",
    "Size of the filesystem the service writes its logs to, by path.",
    ["path"],
    multiprocess_mode="livemax",
)
POSTGRES_CONNECTIONS = Gauge(
    "orders_postgres_connections",
    "Client connections open on the PostgreSQL server (all clients, pg_stat_activity), by alias.",
    ["alias"],
    multiprocess_mode="livemax",
)
POSTGRES_MAX_CONNECTIONS = Gauge(
    "orders_postgres_max_connections",
    "PostgreSQL's max_connections less superuser_reserved_connections, by alias.",
    ["alias"],
    multiprocess_mode="livemax",
)
DATABASE_UNREACHABLE = Gauge(
    "orders_db_unreachable",
    "1 while connections to the database fail (its breaker is open) in some process, by alias.",
    ["alias"],
    multiprocess_mode="livemax",
)
REPLICA_STATE = Gauge(
    "orders_db_replica_state",
    "1 for the state each replica is in (in_rotation, lagging, down), 0 for the others.",
    ["alias", "state"],
    multiprocess_mode="livemax",
)
REPLICA_LAG = Gauge(
    "orders_db_replica_lag_seconds",
    "How far each replica's replay is behind (last measured; unchanged while it is down).",
    ["alias"],
    multiprocess_mode="livemax",
)
REPLICA_LAG_LIMIT = Gauge(
    "orders_db_replica_lag_limit_seconds",
    "DB_REPLICA_MAX_LAG_SECONDS: a replica further behind leaves the rotation.",
    multiprocess_mode="livemax",
)

CONNECTIONS_SQL = """
SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
       current_setting('max_connections')::int
         - current_setting('superuser_reserved_connections')::int
"""


def _read_number(path):
    try:
        with open(path) as file:
            text = file.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def memory_usage():
    """(used bytes, limit bytes) of this container (cgroup v2) or else of the host, or None."""
    used = _read_number("/sys/fs/cgroup/memory.current")
    limit = _read_number("/sys/fs/cgroup/memory.max")  # "max" (no limit) reads as None
    if used is not None and limit is not None:
        return used, limit
    try:
        with open("/proc/meminfo") as file:
            fields = dict(line.split(":", 1) for line in file)
    except OSError:
        return None
    total = int(fields["MemTotal"].split()[0]) * 1024
    available = int(fields["MemAvailable"].split()[0]) * 1024
    return total - available, total


def process_resident_bytes():
    try:
        with open("/proc/self/statm") as file:
            return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def open_file_descriptors():
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def log_directory():
    """Where the service writes: LOG_FILE's directory, or the project's."""
    if settings.LOG_FILE:
        return os.path.dirname(os.path.abspath(settings.LOG_FILE))
    return str(settings.BASE_DIR)


def update_worker_gauges():
    times = os.times()
    WORKER_CPU_SECONDS.set(times.user + times.system)
    resident = process_resident_bytes()
    if resident is not None:
        WORKER_RESIDENT_MEMORY.set(resident)
    open_fds = open_file_descriptors()
    if open_fds is not None:
        WORKER_OPEN_FDS.set(open_fds)
    WORKER_MAX_FDS.set(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    for alias, statistics in all_pool_statistics().items():
        if statistics is None:
            continue
        size = statistics.get("pool_size", 0)
        WORKER_POOL_SIZE.labels(alias).set(size)
        WORKER_POOL_IN_USE.labels(alias).set(size - statistics.get("pool_available", 0))
        WORKER_POOL_WAITING.labels(alias).set(statistics.get("requests_waiting", 0))
        WORKER_POOL_MAX.labels(alias).set(statistics.get("pool_max", 0))


def update_host_gauges():
    usage = memory_usage()
    if usage is not None:
        MEMORY_USED.set(usage[0])
        MEMORY_LIMIT.set(usage[1])
    path = log_directory()
    try:
        disk = shutil.disk_usage(path)
    except OSError:
        return
    DISK_FREE.labels(path).set(disk.free)
    DISK_SIZE.labels(path).set(disk.total)


def update_breaker_gauges():
    for alias, gate in all_breakers().items():
        DATABASE_UNREACHABLE.labels(alias).set(1 if gate.is_open else 0)


def update_database_gauges():
    """The primary's connections against max_connections (not while it is unreachable)."""
    if connections["default"].vendor != "postgresql" or breaker("default").is_open:
        return
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute(CONNECTIONS_SQL)
            in_use, usable = cursor.fetchone()
    except DatabaseError as error:
        # The connection goes back to the pool with the request (or the flusher's cycle).
        logger.debug("reading PostgreSQL's connections failed: %s", error)
        return
    POSTGRES_CONNECTIONS.labels("default").set(in_use)
    POSTGRES_MAX_CONNECTIONS.labels("default").set(usable)


def update_replica_gauges(states=None):
    """The replica monitor's listener: state and lag of every replica."""
    states = replicas.replica_states() if states is None else states
    if states:
        REPLICA_LAG_LIMIT.set(settings.DB_REPLICA_MAX_LAG_SECONDS)
    for alias, state in states.items():
        for name in replicas.STATES:
            REPLICA_STATE.labels(alias, name).set(1 if state.state == name else 0)
        if state.lag_seconds is not None:
            REPLICA_LAG.labels(alias).set(state.lag_seconds)


def update_resource_gauges():
    """What a scrape refreshes: nothing here queries a database."""
    update_worker_gauges()
    update_host_gauges()
    update_breaker_gauges()
    update_replica_gauges()
