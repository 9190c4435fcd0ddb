from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "apps.observability"
    verbose_name = "Observability"
