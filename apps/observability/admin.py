"""The app's admin pages, for Django's autodiscovery: they live with the telemetry they show."""

from apps.observability.telemetry import admin  # noqa: F401
