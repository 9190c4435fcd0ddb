"""gunicorn configuration; gunicorn reads this file from the working directory.

Every value comes from project/settings.py, so configuration is read and validated in one place;
loading settings opens no database connection, which keeps `--preload` safe.
"""

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

try:
    settings.LOGGING  # noqa: B018 - load settings now to report bad configuration
except ImproperlyConfigured as error:
    sys.stderr.write(f"Configuration error: {error}\n")
    sys.exit(2)

bind = [f"0.0.0.0:{settings.PORT}"]
workers = settings.WEB_CONCURRENCY
threads = settings.GUNICORN_THREADS
worker_class = "gthread" if threads > 1 else "sync"
proc_name = "orders-service"

# A request is killed after `timeout` seconds; on SIGTERM workers get `graceful_timeout` seconds
# to finish in-flight requests (keep it below Kubernetes' terminationGracePeriodSeconds).
timeout = 30
graceful_timeout = 25
keepalive = 5
# Recycle workers now and then so a slow leak cannot grow without bound; jitter keeps them from
# restarting all at once.
max_requests = 2000
max_requests_jitter = 200
# The heartbeat file lives in memory: a container's overlay filesystem can stall it.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
# gunicorn 27's control socket defaults to one path per user, which several servers would share.
control_socket_disable = True

# gunicorn's own error and access logs leave through the project's structured logging.
logconfig_dict = settings.LOGGING
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'


def pre_fork(server, worker):
    """With --preload, drop anything the master opened: forked workers must not share sockets."""
    if "django.db" not in sys.modules:
        return
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        connection.close()
        if hasattr(connection, "close_pool"):
            connection.close_pool()
