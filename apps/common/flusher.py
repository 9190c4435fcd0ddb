"""The background flusher: one daemon thread per process runs the jobs apps register with it.

An app registers its jobs in its AppConfig.ready(): `flush(final)` writes what the process has
buffered (the request statistics, the query findings) and does its periodic chores; `prune(days,
batch_size)` deletes what is older than the retention and returns the counts per model.

The thread starts on the first request that buffers something (`ensure_started`, a pid
comparison on the request path: `apps.common.process_id`), so it runs in every gunicorn worker
with or without --preload and after any fork. Every TELEMETRY_FLUSH_SECONDS it runs every flush
job, then at most once an hour the prune jobs (once an hour overall when the cache is shared).
`flush_at_exit` runs the flush jobs a last time when the worker exits (gunicorn's worker_exit
hook; atexit as a backup).
A job that fails is logged and the others still run.

The thread gives its database connections back after every cycle: with the psycopg pool a
connection kept by an idle thread is one fewer for requests.

TELEMETRY_FLUSH_SECONDS=0 starts no thread (the test suite flushes explicitly).
"""

import atexit
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from django.conf import settings
from django.core.cache import cache

from apps.common import process_id
from apps.common.database import close_all_connections

logger = structlog.get_logger(__name__)

PRUNE_INTERVAL_SECONDS = 3600
PRUNE_LOCK_KEY = "observability:prune-telemetry"
PRUNE_BATCH_SIZE = 1000


@dataclass(frozen=True)
class Job:
    name: str
    flush: Callable[[bool], object] | None = None
    prune: Callable[[int, int], dict] | None = None


_jobs = {}
_start_lock = threading.Lock()
_started_pid = None
_stop = threading.Event()
_last_prune = None


def register(name, *, flush=None, prune=None):
    """Run `flush(final)` on every cycle and `prune(days, batch_size)` when pruning is due.

    Registering a name again replaces its job; jobs run in the order they were first registered.
    """
    _jobs[name] = Job(name, flush, prune)


def is_started():
    """Whether this process has started its flusher (served a request that buffered something)."""
    return _started_pid == process_id.current


def ensure_started():
    """Start this process's flusher if it has none yet; cheap enough for every request."""
    global _started_pid, _stop
    if _started_pid == process_id.current:
        return
    with _start_lock:
        if _started_pid == process_id.current:
            return
        _started_pid = process_id.current
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
    """Run every flush job, then the prune jobs when due; never raises."""
    try:
        for job in list(_jobs.values()):
            if job.flush is None:
                continue
            try:
                job.flush(final)
            except Exception:
                logger.exception("telemetry_flush_cycle_failed", job=job.name)
        if not final:
            try:
                prune_if_due()
            except Exception:
                logger.exception("telemetry_flush_cycle_failed", job="prune")
    finally:
        close_all_connections()


def prune(retention_days, batch_size=PRUNE_BATCH_SIZE):
    """Run every prune job; returns the number of rows deleted per model."""
    deleted = {}
    for job in list(_jobs.values()):
        if job.prune is not None:
            deleted.update(job.prune(retention_days, batch_size))
    return deleted


def prune_if_due():
    """Prune at most once an hour per process, and once an hour overall with a shared cache."""
    global _last_prune
    now = time.monotonic()
    if _last_prune is not None and now - _last_prune < PRUNE_INTERVAL_SECONDS:
        return
    _last_prune = now
    if not cache.add(PRUNE_LOCK_KEY, os.getpid(), timeout=PRUNE_INTERVAL_SECONDS):
        return
    deleted = prune(settings.TELEMETRY_RETENTION_DAYS)
    if any(deleted.values()):
        logger.info("telemetry_pruned", **deleted)


def flush_at_exit():
    """Last flush of a process that served requests (gunicorn worker_exit, atexit)."""
    if _started_pid != process_id.current:
        return
    _stop.set()
    flush_cycle(final=True)
