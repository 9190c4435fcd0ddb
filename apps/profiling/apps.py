from django.apps import AppConfig


class ProfilingConfig(AppConfig):
    name = "apps.profiling"
    verbose_name = "Profiling"

    def ready(self):
        from apps.profiling.inspector import install_inspector

        install_inspector()
