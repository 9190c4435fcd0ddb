"""/api/dev/: development only (project/urls.py includes it when DEBUG is on)."""

from django.urls import path

from apps.orders.api import demo_views

app_name = "demo"

urlpatterns = [
    path("slow/", demo_views.DemoSlowView.as_view(), name="slow"),
    path("n-plus-one/", demo_views.DemoNPlusOneView.as_view(), name="n-plus-one"),
    path("error/", demo_views.DemoErrorView.as_view(), name="error"),
    path("throttled/", demo_views.DemoThrottledView.as_view(), name="throttled"),
]
