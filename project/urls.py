from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from project import views

admin.site.site_header = "Orders service"
admin.site.site_title = "Orders service admin"
admin.site.index_title = "Operations"
# No app sidebar beside every page: its width would push the changelists' columns off screen;
# the breadcrumbs and the index lead to every model.
admin.site.enable_nav_sidebar = False

# A body over DJANGO_MAX_BODY_BYTES read outside a DRF view: JSON 413 instead of a bare 400.
handler400 = "apps.api.errors.bad_request"
# An unhandled exception under /api/: the JSON error shape (503 if the database is down).
handler500 = "apps.api.errors.server_error"

# Development only: endpoints that misbehave on purpose for `manage.py demo_traffic` (a slow
# request, an N+1, a 500, 429s); they do not exist in production. Before "api/", whose catch-all
# would answer them 404.
demo_urls = [path("api/dev/", include("apps.orders.api.demo_urls"))] if settings.DEBUG else []

urlpatterns = [
    # The landing page: what this is and a link to everything below.
    path("", views.home, name="home"),
    # The scaling audit's page (apps/audit), among the ops pages but not imported by them.
    path("admin/ops/audit/", include("apps.audit.urls")),
    # Ops dashboards (staff); before the admin, whose admin/<app_label>/ would catch them.
    path("admin/ops/", include("apps.observability.ops.urls")),
    path("admin/", admin.site.urls),
    # REST API v1, its OpenAPI schema and Swagger UI; unknown /api/ URLs answer a JSON 404.
    *demo_urls,
    path("api/", include("apps.orders.api.urls")),
    # /health-detailed (/health and /ready are answered by ProbeMiddleware).
    path("", include("apps.observability.urls")),
]
if settings.SILK_ENABLED:
    # Staff-only request profiles (SILKY_AUTHENTICATION/AUTHORISATION); absent when disabled.
    urlpatterns.append(path("silk/", include("silk.urls", namespace="silk")))
