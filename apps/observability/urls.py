from django.urls import path

from apps.observability.health import views
from apps.observability.telemetry import statistics as stats

# /health and /ready are answered by ProbeMiddleware, before host validation and sessions.
# /health-detailed needs the session (staff access), so it goes through the whole chain.
urlpatterns = [
    path("health-detailed", views.health_detailed, name="health-detailed"),
    # Request statistics summed over all processes (staff session or METRICS_TOKEN).
    path("stats", stats.stats_view, name="stats"),
]
