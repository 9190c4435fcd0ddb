from django.db.backends.postgresql import base
from django_prometheus.db.backends.postgresql import base as prometheus_base

from apps.observability.metrics.db_backends import cursor_wrapper_class


class DatabaseWrapper(prometheus_base.DatabaseWrapper):
    def get_connection_params(self):
        # Django's parameters, and django-prometheus' cursor class without building it anew.
        params = base.DatabaseWrapper.get_connection_params(self)
        params["cursor_factory"] = cursor_wrapper_class(
            params["cursor_factory"], self.alias, self.vendor
        )
        return params
