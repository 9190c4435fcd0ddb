"""Ops dashboards, mounted at /admin/ops/ before the admin's own URLs (project/urls.py)."""

from django.urls import path

from apps.observability.ops import views as ops_views

app_name = "ops"
urlpatterns = [
    path("", ops_views.overview, name="overview"),
    path("routes/", ops_views.routes, name="routes"),
    # The route template travels in the query string (?route=/api/v1/orders/<int:pk>/&method=GET).
    path("routes/route/", ops_views.route_detail, name="route"),
    path("database/", ops_views.database, name="database"),
    path("database/statements/", ops_views.statements, name="statements"),
]
