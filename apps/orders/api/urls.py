from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny
from rest_framework.routers import DefaultRouter

from apps.api.errors import api_not_found
from apps.orders.api import views

app_name = "api"


class ApiRouter(DefaultRouter):
    """DRF's router with its root at /api/v1/ listing the reports, the schema and the docs too."""

    APIRootView = views.ApiRootView
    include_format_suffixes = False

    def get_api_root_view(self, api_urls=None):
        endpoints = {
            prefix: self.routes[0].name.format(basename=basename)
            for prefix, _viewset, basename in self.registry
        }
        endpoints.update(
            {
                "reports/sales": "report-sales",
                "reports/top-products": "report-top-products",
                "schema": "schema",
                "docs": "docs",
            }
        )
        return self.APIRootView.as_view(api_root_dict=endpoints)


router = ApiRouter()
router.register("customers", views.CustomerViewSet, basename="customer")
router.register("products", views.ProductViewSet, basename="product")
router.register("orders", views.OrderViewSet, basename="order")

# The schema and its documentation page are public: they describe the API, they hold no data.
public = {"authentication_classes": [], "permission_classes": [AllowAny], "throttle_classes": []}

urlpatterns = [
    path("v1/", include(router.urls)),
    path("v1/reports/sales/", views.SalesReportView.as_view(), name="report-sales"),
    path(
        "v1/reports/top-products/",
        views.TopProductsReportView.as_view(),
        name="report-top-products",
    ),
    path("schema/", SpectacularAPIView.as_view(**public), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema", **public), name="docs"),
    # Anything else under /api/ is a JSON 404 in the API's error shape.
    re_path(r"^[\s\S]*$", api_not_found, name="not-found"),
]
