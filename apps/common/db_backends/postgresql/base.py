from django.core.exceptions import ImproperlyConfigured
from django.db.backends.postgresql import base
from psycopg import IsolationLevel

from apps.common.breakers import breaker, breaker_connection_class, checkout
from apps.common.timestamps import fast_timestamps


class DatabaseWrapper(base.DatabaseWrapper):
    """Django's PostgreSQL backend, with the connection breaker of apps.common.breakers and
    timestamps parsed by psycopg's C loader (apps.common.timestamps).

    The pool connects through a connection class that reports to the breaker, and a checkout
    waits no longer than the breaker allows.
    """

    def __init__(self, settings_dict, alias, *args, **kwargs):
        pool_options = settings_dict.get("OPTIONS", {}).get("pool")
        if isinstance(pool_options, dict):
            pool_options.setdefault("connection_class", breaker_connection_class(alias))
        super().__init__(settings_dict, alias, *args, **kwargs)

    def get_connection_params(self):
        params = super().get_connection_params()
        params["context"] = fast_timestamps(params["context"])
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
