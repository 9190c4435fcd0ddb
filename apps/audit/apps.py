from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "apps.audit"
    verbose_name = "Scaling audit"

    def ready(self):
        from apps.audit.metrics import export_last_run_job
        from apps.audit.services import prune_runs
        from apps.common import flusher

        flusher.register("scaling audit", flush=export_last_run_job, prune=prune_runs)
