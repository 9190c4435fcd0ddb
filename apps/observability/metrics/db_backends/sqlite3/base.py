from django_prometheus.db.backends.sqlite3 import base as prometheus_base

from apps.observability.metrics.db_backends import cursor_wrapper_class


class DatabaseWrapper(prometheus_base.DatabaseWrapper):
    def create_cursor(self, name=None):
        return self.connection.cursor(
            factory=cursor_wrapper_class(self.CURSOR_CLASS, self.alias, self.vendor)
        )
