"""django-prometheus' database backends, with their metrics cursor class built once.

django-prometheus' backends count queries, errors and query durations (the `django_db_*`
metrics) through a cursor class that a function builds (ExportingCursorWrapper): on PostgreSQL in
get_connection_params, which Django calls on every connect, so with the connection pool
(CONN_MAX_AGE=0) on every request; on SQLite for every cursor. Building a class costs about as
much as the whole Prometheus request middleware (bench/README.md). These subclasses build it once
per cursor class, alias and vendor; the metrics and what they count are django-prometheus' own.
settings.PROMETHEUS_DATABASE_ENGINES maps Django's engines to these.
"""

import functools

from django_prometheus.db.common import ExportingCursorWrapper

# (cursor class, alias, vendor) -> the class: a handful per process.
cursor_wrapper_class = functools.cache(ExportingCursorWrapper)
