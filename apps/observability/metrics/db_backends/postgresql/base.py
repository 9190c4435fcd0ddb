from apps.common.db_backends.postgresql import base as project_base
from apps.observability.metrics.db_backends import connection_counters, cursor_wrapper_class
from apps.observability.metrics.pending import request_updates


class DatabaseWrapper(project_base.DatabaseWrapper):
    """The project's PostgreSQL backend, counting connections and queries as django-prometheus'
    PostgreSQL backend does, with its label children looked up once
    (apps.observability.metrics.db_backends).

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

    def get_new_connection(self, conn_params):
        made, failed = connection_counters(self.alias, self.vendor)
        request_updates.add_while_flushing((made, 1))
        try:
            return super().get_new_connection(conn_params)
        except Exception:
            failed.inc()
            raise
