from django.urls import path

from apps.observability.health import views

# /health and /ready are answered by ProbeMiddleware, before host validation and sessions.
# /health-detailed needs the session (staff access), so it goes through the whole chain.
urlpatterns = [
    path("health-detailed", views.health_detailed, name="health-detailed"),
]
