"""gunicorn configuration; gunicorn reads this file from the working directory.

Every value comes from project/settings.py, so configuration is read and validated in one place;
loading settings opens no database connection, which keeps `--preload` safe.
"""

import gc
import logging
import os
import shutil
import sys
import tempfile

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from gunicorn.glogging import Logger

try:
    settings.LOGGING  # noqa: B018 - load settings now to report bad configuration
except ImproperlyConfigured as error:
    sys.stderr.write(f"Configuration error: {error}\n")
    sys.exit(2)

# Prometheus multiprocess mode (observability/metrics/registry.py): prometheus_client reads the
# variable when it is imported, so it is set here, before the application is loaded (even with
# --preload). One directory per master in the temporary directory, a tmpfs that stays writable
# with a read-only root filesystem; emptied in on_starting, removed in on_exit (or by on_starting
# when it refuses to start). Scripts that only read this file's values (sys.argv[0] is not
# gunicorn) create nothing.
DEFAULT_PROMETHEUS_DIRECTORY = os.path.join(
    tempfile.gettempdir(), f"orders-prometheus-{os.getpid()}"
)
if "gunicorn" in (os.path.basename(sys.argv[0]), os.path.basename(os.path.dirname(sys.argv[0]))):
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", DEFAULT_PROMETHEUS_DIRECTORY)
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

wsgi_app = "project.wsgi:application"
bind = [f"0.0.0.0:{settings.PORT}"]
workers = settings.WEB_CONCURRENCY
threads = settings.GUNICORN_THREADS
worker_class = "gthread" if threads > 1 else "sync"
proc_name = "orders-service"

# Threaded workers: they serve far more than sync workers while views wait on the database
# (bench/README.md).
# With gthread, `timeout` only restarts a worker that stopped answering its heartbeat; a slow
# request is bounded by DB_STATEMENT_TIMEOUT_MS and the load balancer. On SIGTERM workers get
# `graceful_timeout` seconds to finish in-flight requests (below the pod's termination grace).
timeout = 30
graceful_timeout = 25
# Longer than a load balancer's usual 60 s idle timeout, so gunicorn never closes a connection
# the balancer is about to reuse (that would surface as a sporadic 502).
keepalive = 65
# Recycle workers now and then so a slow leak cannot grow without bound; jitter keeps them from
# restarting all at once.
max_requests = 2000
max_requests_jitter = 200
# The heartbeat file lives in memory: a container's overlay filesystem can stall it.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
# gunicorn 27's control socket defaults to one path per user, which several servers would share.
control_socket_disable = True

# gunicorn's own logs leave through the project's structured logging. Its access log is off:
# RequestContextMiddleware writes the one access line per request (request id, route, queries,
# redacted). logconfig_dict alone turns gunicorn's access lines on, so settings.LOGGING also
# sets the gunicorn.access logger to WARNING, and ProjectLogger does not build the lines it drops.
logconfig_dict = settings.LOGGING
accesslog = None


class ProjectLogger(Logger):
    """gunicorn's logger, building an access line only when gunicorn.access would write it:
    with logconfig_dict set, gunicorn formats one for every request (its atoms: headers, times,
    a strftime) and only then lets the logger's level drop it."""

    def access(self, resp, req, environ, request_time):
        if self.access_log.isEnabledFor(logging.INFO):
            super().access(resp, req, environ, request_time)


logger_class = ProjectLogger


def pre_fork(server, worker):
    """With --preload, drop anything the master opened: forked workers must not share sockets."""
    if "django.db" not in sys.modules:
        return
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        connection.close()
        if hasattr(connection, "close_pool"):
            connection.close_pool()


# Container objects allocated (less those freed) between two young collections: Python's 700
# walks a list request's live rows several times and promotes them to older generations, though
# reference counting frees them all when the response is sent (bench/README.md, issue 19).
YOUNG_COLLECTION_THRESHOLD = 10_000


def post_worker_init(worker):
    """From SIGTERM on, this worker's /ready answers 503 while it finishes in-flight requests.

    What the worker has loaded (modules, settings, the application) lives as long as it does: it
    is moved out of the garbage collector's reach (gc.freeze), so that full collections stop
    walking it on the request path and, with --preload, stop writing to the memory pages the
    workers share with the master. Young collections run every YOUNG_COLLECTION_THRESHOLD
    allocations."""
    from apps.observability.health.draining import install_drain_signal_handler

    install_drain_signal_handler()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


def on_starting(server):
    """Stop with one line when the port is taken or the database does not exist; empty the
    Prometheus directory: files left by an earlier server would add to the totals."""
    from project.preflight import busy_port_problem, missing_database_problem

    # Not on a re-exec (USR2) or under systemd: the sockets are inherited, not bound anew.
    inherits_sockets = server.LISTENERS or "GUNICORN_FD" in os.environ or "LISTEN_FDS" in os.environ
    problem = (None if inherits_sockets else busy_port_problem(server.cfg.address)) or (
        missing_database_problem(settings.DATABASES)
    )
    if problem:
        sys.stderr.write(f"Configuration error: {problem}\n")
        remove_own_prometheus_directory()  # on_exit does not run: the master never started
        sys.exit(2)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", DEFAULT_PROMETHEUS_DIRECTORY)
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    with os.scandir(os.environ["PROMETHEUS_MULTIPROC_DIR"]) as entries:
        for entry in entries:
            if entry.is_file() and entry.name.endswith(".db"):
                os.unlink(entry.path)


def when_ready(server):
    """Once the sockets are bound (not before: the port may have been taken)."""
    for listener in server.LISTENERS:
        server.log.info("Serving on %s (the landing page at / links to everything)", listener)


def worker_exit(server, worker):
    """Write the worker's buffered request statistics and access lines (graceful stop,
    recycling, reload)."""
    if "apps.common.flusher" in sys.modules:  # not when the application was never loaded
        from apps.common.flusher import flush_at_exit

        flush_at_exit()
    if "apps.observability.logging.buffer" in sys.modules:
        from apps.observability.logging.buffer import access_lines

        access_lines.write()


def child_exit(server, worker):
    """Drop a dead worker's live gauges from /metrics; its counters stay in the totals."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """The master is stopping: its own Prometheus directory goes with it."""
    remove_own_prometheus_directory()


def remove_own_prometheus_directory():
    """Remove this server's own Prometheus directory (never one the operator configured)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") == DEFAULT_PROMETHEUS_DIRECTORY:
        shutil.rmtree(DEFAULT_PROMETHEUS_DIRECTORY, ignore_errors=True)
