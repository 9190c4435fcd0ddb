from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "apps.observability"
    verbose_name = "Observability"

    def ready(self):
        from apps.common import flusher
        from apps.observability.metrics.registry import update_pool_gauges_job
        from apps.observability.telemetry.aggregation import flush_job
        from apps.observability.telemetry.retention import prune_telemetry

        flusher.register("telemetry", flush=flush_job, prune=prune_telemetry)
        flusher.register("pool gauges", flush=update_pool_gauges_job)
