from django.apps import AppConfig, apps


class ProfilingConfig(AppConfig):
    name = "apps.profiling"
    verbose_name = "Profiling"

    def ready(self):
        from apps.common import flusher
        from apps.profiling.callsite import pass_through
        from apps.profiling.findings import flush_job, prune_findings
        from apps.profiling.inspector import install_inspector

        install_inspector()
        flusher.register("query findings", flush=flush_job, prune=prune_findings)
        if apps.is_installed("silk"):
            from apps.profiling.silk import install_query_guard, request_wrappers

            install_query_guard()
            for function in request_wrappers():
                pass_through(function)
