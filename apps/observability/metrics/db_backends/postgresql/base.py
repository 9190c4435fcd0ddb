from django.db.backends.postgresql import base
from django_prometheus.db.common import DatabaseWrapperMixin

from apps.common.db_backends.postgresql import base as project_base
from apps.observability.metrics.db_backends import cursor_wrapper_class


class DatabaseWrapper(DatabaseWrapperMixin, project_base.DatabaseWrapper):
    """The project's PostgreSQL backend, counting connections and queries as django-prometheus'
    PostgreSQL backend does (its cursor class built once, apps.observability.metrics.db_backends).

    With the pool, a connection is a checkout: `django_db_new_connections_total` counts checkouts
    and `django_db_new_connection_errors_total` the failed ones, which the connection-errors alert
    reads.
    """

    def get_connection_params(self):
        params = super().get_connection_params()
        params["cursor_factory"] = cursor_wrapper_class(
            params["cursor_factory"], self.alias, self.vendor
        )
        return params

    def create_cursor(self, name=None):
        # psycopg creates the counting cursors (cursor_factory above); the mixin's create_cursor
        # does not fit psycopg 3, as in django-prometheus' own PostgreSQL backend.
        return base.DatabaseWrapper.create_cursor(self, name=name)
