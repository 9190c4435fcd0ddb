from django.core.exceptions import ImproperlyConfigured
from django.db.backends.postgresql import base
from django_prometheus.db.backends.postgresql import base as prometheus_base
from psycopg import IsolationLevel

from apps.common.breakers import breaker, breaker_connection_class, checkout
from apps.observability.metrics.db_backends import cursor_wrapper_class


class DatabaseWrapper(prometheus_base.DatabaseWrapper):
    """django-prometheus' PostgreSQL backend, with the connection breaker of apps.common.breakers.

    The pool connects through a connection class that reports to the breaker, and a checkout
    waits no longer than the breaker allows.
    """

    def __init__(self, settings_dict, alias, *args, **kwargs):
        pool_options = settings_dict.get("OPTIONS", {}).get("pool")
        if isinstance(pool_options, dict):
            pool_options.setdefault("connection_class", breaker_connection_class(alias))
        super().__init__(settings_dict, alias, *args, **kwargs)

    def get_connection_params(self):
        # Django's parameters, and django-prometheus' cursor class without building it anew.
        params = base.DatabaseWrapper.get_connection_params(self)
        params["cursor_factory"] = cursor_wrapper_class(
            params["cursor_factory"], self.alias, self.vendor
        )
        return params

    def get_new_connection(self, conn_params):
        if not self.pool:
            try:
                connection = super().get_new_connection(conn_params)
            except self.Database.OperationalError as error:
                breaker(self.alias).record_failure(error)
                raise
            breaker(self.alias).record_success()
            return connection
        # Django's pooled branch, with the breaker's checkout instead of pool.getconn().
        isolation_level = self.settings_dict["OPTIONS"].get("isolation_level")
        try:
            self.isolation_level = IsolationLevel(
                IsolationLevel.READ_COMMITTED if isolation_level is None else isolation_level
            )
        except ValueError:
            raise ImproperlyConfigured(
                f"Invalid transaction isolation level {isolation_level} specified. "
                "Use one of the psycopg.IsolationLevel values."
            ) from None
        self.pool.open()
        connection = checkout(self.pool, self.alias)
        if isolation_level is not None:
            connection.isolation_level = self.isolation_level
        return connection
