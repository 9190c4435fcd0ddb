from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "apps.orders"
    verbose_name = "Orders"

    def ready(self):
        # Registers the Bearer API key security scheme with drf-spectacular.
        from apps.api import schema  # noqa: F401
