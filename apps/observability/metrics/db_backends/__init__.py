"""django-prometheus' database backends, with a cheaper cursor class built once.

django-prometheus' backends count queries, errors and query durations (the `django_db_*`
metrics) through a cursor class that a function builds (ExportingCursorWrapper): on PostgreSQL in
get_connection_params, which Django calls on every connect, so with the connection pool
(CONN_MAX_AGE=0) on every request; on SQLite for every cursor. Building a class costs about as
much as the whole Prometheus request middleware (bench/README.md). The project's subclasses build
it once per cursor class, alias and vendor, and its label children once with it: django-prometheus
looks them up on every query (two `labels()` calls under a lock, one by keyword that sorts the
names) and times it with a context manager per query. The PostgreSQL backend counts new
connections (with the pool, checkouts: one per request) through label children looked up once
too. Counts and durations are handed to the flusher with the request metrics (metrics/pending.py)
rather than written to the multiprocess files on every query. The metrics and what they count are
django-prometheus' own.
settings.PROMETHEUS_DATABASE_ENGINES maps Django's engines to these.
"""

import functools
import time

from django_prometheus.db import (
    connection_errors_total,
    connections_total,
    errors_total,
    execute_many_total,
    execute_total,
    query_duration_seconds,
)

from apps.observability.metrics.pending import request_updates


@functools.cache
def connection_counters(alias, vendor):
    """The label children of django-prometheus' new-connection counters: (made, failed)."""
    return connections_total.labels(alias, vendor), connection_errors_total.labels(alias, vendor)


@functools.cache
def cursor_wrapper_class(cursor_class, alias, vendor):
    """`cursor_class` counting and timing its statements, as ExportingCursorWrapper's does."""
    executed = execute_total.labels(alias, vendor)
    executed_in_bulk = execute_many_total.labels(alias, vendor)
    duration = query_duration_seconds.labels(alias, vendor)

    def count_error(error):
        errors_total.labels(alias, vendor, type(error).__name__).inc()

    class CursorWrapper(cursor_class):
        def execute(self, *args, **kwargs):
            started = time.perf_counter()
            try:
                return super().execute(*args, **kwargs)
            except BaseException as error:
                count_error(error)
                raise
            finally:
                request_updates.add_while_flushing(
                    (executed, 1), (duration, time.perf_counter() - started)
                )

        def executemany(self, query, param_list, *args, **kwargs):
            statements = len(param_list)
            started = time.perf_counter()
            try:
                return super().executemany(query, param_list, *args, **kwargs)
            except BaseException as error:
                count_error(error)
                raise
            finally:
                request_updates.add_while_flushing(
                    (executed, statements),
                    (executed_in_bulk, statements),
                    (duration, time.perf_counter() - started),
                )

    return CursorWrapper
