"""The background flusher: one daemon thread per process writes the telemetry buffer.

It starts on the first counted request of a process (`ensure_started`, a pid comparison on the
request path), so it runs in every gunicorn worker with or without --preload and after any
fork. Every TELEMETRY_FLUSH_SECONDS it writes the buffer and the query inspector's findings
(apps/profiling/findings.py), logs the summary of finished minutes, refreshes the pool gauges
and, at most once an hour, prunes old telemetry and findings. `flush_at_exit` does
the last write when the worker exits (gunicorn's worker_exit hook; atexit as a backup).

The thread closes its database connections after every cycle: with the psycopg pool a
connection kept by an idle thread is one fewer for requests.

TELEMETRY_FLUSH_SECONDS=0 starts no thread (the test suite flushes explicitly).
"""

import atexit
import os
import threading
import time

from django.conf import settings
from django.core.cache import cache
from django.db import connections

from apps.observability.logging.formatting import get_logger
from apps.observability.metrics import registry as metrics
from apps.observability.telemetry import aggregation as telemetry
from apps.profiling import findings as query_findings

logger = get_logger(__name__)

PRUNE_INTERVAL_SECONDS = 3600
PRUNE_LOCK_KEY = "observability:prune-telemetry"

_start_lock = threading.Lock()
_started_pid = None
_stop = threading.Event()
_last_prune = None


def ensure_started():
    """Start this process's flusher if it has none yet; cheap enough for every request."""
    global _started_pid, _stop
    if _started_pid == os.getpid():
        return
    with _start_lock:
        if _started_pid == os.getpid():
            return
        _started_pid = os.getpid()
        interval = settings.TELEMETRY_FLUSH_SECONDS
        if interval <= 0:
            return
        _stop = threading.Event()
        thread = threading.Thread(
            target=_run, args=(_stop, interval), name="telemetry-flusher", daemon=True
        )
        thread.start()
        atexit.register(flush_at_exit)


def _run(stop, interval):
    while not stop.wait(interval):
        flush_cycle()


def flush_cycle(final=False):
    """Write the buffer and do the periodic chores; never raises."""
    try:
        telemetry.flush_telemetry()
        query_findings.flush_findings()
        now_minute = telemetry.minute_start(time.time())
        telemetry.log_minute_summaries(None if final else now_minute)
        metrics.update_pool_gauges()
        if not final:
            prune_if_due()
    except Exception:
        logger.exception("telemetry_flush_cycle_failed")
    finally:
        close_connections()


def close_connections():
    """Give this thread's connections back (to the pool, or close them)."""
    for connection in connections.all(initialized_only=True):
        try:
            connection.close()
        except Exception:
            logger.warning("telemetry_connection_close_failed", exc_info=True)


def prune_if_due():
    """Prune at most once an hour per process, and once an hour overall with a shared cache."""
    global _last_prune
    now = time.monotonic()
    if _last_prune is not None and now - _last_prune < PRUNE_INTERVAL_SECONDS:
        return
    _last_prune = now
    if not cache.add(PRUNE_LOCK_KEY, os.getpid(), timeout=PRUNE_INTERVAL_SECONDS):
        return
    deleted = telemetry.prune_telemetry(settings.TELEMETRY_RETENTION_DAYS)
    deleted.update(query_findings.prune_findings(settings.TELEMETRY_RETENTION_DAYS))
    if any(deleted.values()):
        logger.info("telemetry_pruned", **deleted)


def flush_at_exit():
    """Last flush of a process that served requests (gunicorn worker_exit, atexit)."""
    if _started_pid != os.getpid():
        return
    _stop.set()
    flush_cycle(final=True)
