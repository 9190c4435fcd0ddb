from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "apps.observability"
    verbose_name = "Observability"

    def ready(self):
        from apps.common import flusher, replicas
        from apps.observability.metrics.pending import request_updates
        from apps.observability.metrics.registry import export_counters_at_zero, update_gauges_job
        from apps.observability.metrics.resources import update_replica_gauges
        from apps.observability.telemetry.aggregation import flush_job
        from apps.observability.telemetry.retention import prune_telemetry

        flusher.register("telemetry", flush=flush_job, prune=prune_telemetry)
        flusher.register("gauges", flush=update_gauges_job)
        flusher.register("prometheus", flush=request_updates.flush_job)
        if update_replica_gauges not in replicas.monitor.listeners:
            replicas.monitor.listeners.append(update_replica_gauges)
        export_counters_at_zero()
