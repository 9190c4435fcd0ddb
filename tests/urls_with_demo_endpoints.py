"""project.urls as in development (DEBUG on): with the /api/dev/ endpoints of demo_traffic."""

from django.urls import include, path

from project.urls import handler400, handler500
from project.urls import urlpatterns as project_urlpatterns

__all__ = ["handler400", "handler500", "urlpatterns"]

urlpatterns = [
    path("api/dev/", include("apps.orders.api.demo_urls")),
    *project_urlpatterns,
]
