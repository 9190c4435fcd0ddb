from django.urls import path

from apps.observability.telemetry import views

urlpatterns = [
    # Request statistics summed over all processes (staff session or METRICS_TOKEN).
    path("stats", views.stats_view, name="stats"),
]
