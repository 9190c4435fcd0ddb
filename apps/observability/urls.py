"""The ops endpoints outside the admin: /health-detailed and /stats.

/health, /ready and /metrics are answered by ProbeMiddleware; the dashboards are under
/admin/ops/ (apps/observability/ops/urls.py).
"""

from django.urls import include, path

urlpatterns = [
    path("", include("apps.observability.health.urls")),
    path("", include("apps.observability.telemetry.urls")),
]
