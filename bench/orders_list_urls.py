"""URLs of bench/orders_list.py: the project's URLs plus a plain Django view of the same query."""

from django.http import JsonResponse
from django.urls import path

from apps.orders.models import Order
from apps.tenants.models import Organization
from project.urls import urlpatterns as project_urlpatterns

ROWS = 50


def plain_orders(request):
    """The orders list query of the API (with_summary, newest first), as a bare JsonResponse."""
    organization = Organization.objects.get(slug="demo-1")
    orders = Order.objects.for_org(organization).with_summary().order_by("-created_at", "-id")
    rows = [
        {
            "id": order.pk,
            "number": order.number,
            "status": order.status,
            "customer": {
                "id": order.customer.pk,
                "email": order.customer.email,
                "name": order.customer.name,
            },
            "currency": order.currency,
            "total": str(order.total),
            "line_count": order.line_count,
            "created_at": order.created_at.isoformat(),
        }
        for order in orders[:ROWS]
    ]
    return JsonResponse({"results": rows})


urlpatterns = [path("bench/plain-orders/", plain_orders), *project_urlpatterns]
