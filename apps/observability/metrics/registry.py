"""The project's Prometheus metrics and the registry /metrics and the ops pages read.

Under gunicorn, PROMETHEUS_MULTIPROC_DIR is set (gunicorn.conf.py) before prometheus_client is
imported: every process writes its values to files there and /metrics adds up the files of all
processes, dead ones included for counters, so totals do not depend on which worker answers or on
workers being recycled. Gauges say how processes combine (`multiprocess_mode`): the pool gauges
add up the live processes. Without the variable (runserver, tests, manage.py) the process's own
registry is exported.
"""

import os

import prometheus_client
from django.conf import settings

# django-prometheus' cache counters, registered whatever the cache backend: the dashboard's hit
# ratio then reads 0 rather than nothing without Redis.
from django_prometheus.cache import metrics as cache_metrics  # noqa: F401
from django_prometheus.db.metrics import connection_errors_total
from prometheus_client import Counter, Gauge, multiprocess

from apps.common import replicas
from apps.common.database import all_pool_statistics
from apps.observability.metrics.resources import update_database_gauges, update_resource_gauges

SLOW_REQUESTS = Counter(
    "orders_slow_requests_total",
    "Requests at or above LOG_SLOW_REQUEST_MS, by route template and method.",
    ["route", "method"],
)
TELEMETRY_FLUSH_FAILURES = Counter(
    "orders_telemetry_flush_failures_total",
    "Flushes of request statistics to the database that failed (the buffer is kept).",
)
TELEMETRY_RECORD_FAILURES = Counter(
    "orders_telemetry_record_failures_total",
    "Requests whose statistics could not be recorded (the request itself was answered).",
)
TELEMETRY_DROPPED_REQUESTS = Counter(
    "orders_telemetry_dropped_requests_total",
    "Requests dropped from the statistics because the buffer was full (database down too long).",
)
AFTER_RESPONSE_FAILURES = Counter(
    "orders_after_response_failures_total",
    "Work done after a response was sent that failed: access lines or Prometheus response "
    "metrics lost for that request.",
    ["work"],
)
# What is written after its response, exported at 0 from the start: access lines
# (after_response.py, logging/buffer.py) and the Prometheus request series (metrics/pending.py).
for work in ("access line", "prometheus"):
    AFTER_RESPONSE_FAILURES.labels(work)
CACHE_FAILURES = Counter(
    "orders_cache_failures_total",
    "Cache calls that could not reach Redis and failed open (a miss, nothing stored), by "
    "django-redis operation.",
    ["operation"],
)
DB_POOL_SIZE = Gauge(
    "orders_db_pool_size",
    "Connections opened by the connection pools, summed over live processes.",
    ["alias"],
    multiprocess_mode="livesum",
)
DB_POOL_AVAILABLE = Gauge(
    "orders_db_pool_available",
    "Idle connections in the connection pools, summed over live processes.",
    ["alias"],
    multiprocess_mode="livesum",
)
DB_POOL_WAITING = Gauge(
    "orders_db_pool_requests_waiting",
    "Requests waiting for a pooled connection, summed over live processes.",
    ["alias"],
    multiprocess_mode="livesum",
)
DB_POOL_MAX = Gauge(
    "orders_db_pool_max",
    "Pool ceiling (DB_POOL_MAX_SIZE) summed over live processes.",
    ["alias"],
    multiprocess_mode="livesum",
)


def is_multiprocess():
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def update_pool_gauges():
    for alias, statistics in all_pool_statistics().items():
        if statistics is None:
            continue
        DB_POOL_SIZE.labels(alias).set(statistics.get("pool_size", 0))
        DB_POOL_AVAILABLE.labels(alias).set(statistics.get("pool_available", 0))
        DB_POOL_WAITING.labels(alias).set(statistics.get("requests_waiting", 0))
        DB_POOL_MAX.labels(alias).set(statistics.get("pool_max", 0))


def update_gauges():
    """Every gauge that is read rather than counted: pools, resources, replicas."""
    update_pool_gauges()
    update_resource_gauges()


def update_gauges_job(final):
    """The flusher's job: the gauges follow the pools and resources between scrapes, and
    PostgreSQL's connections are read."""
    update_gauges()
    update_database_gauges()


def export_counters_at_zero():
    """Counters that alerts read, at 0 before their first increment: increase() cannot see the
    first failure of a series that appears at 1."""
    for alias, database in settings.DATABASES.items():
        vendor = "postgresql" if database["ENGINE"].endswith("postgresql") else "sqlite"
        connection_errors_total.labels(alias, vendor)
    replicas.export_counters_at_zero()


def registry():
    """The samples of every process (multiprocess mode) or of this one."""
    if not is_multiprocess():
        return prometheus_client.REGISTRY
    collected = prometheus_client.CollectorRegistry()
    multiprocess.MultiProcessCollector(collected)
    return collected


def exposition():
    """The metrics text of all processes (multiprocess mode) or of this one."""
    return prometheus_client.generate_latest(registry())
