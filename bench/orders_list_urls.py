"""URLs of bench/orders_list.py: the project's URLs plus a plain Django view of the same query."""

import functools

from django.http import JsonResponse
from django.urls import path

from apps.orders.models import Order
from apps.tenants.models import Organization
from project.urls import urlpatterns as project_urlpatterns

ROWS = 50


@functools.cache
def _organization():
    return Organization.objects.get(slug="demo-1")


def plain_orders(request):
    """The orders list query of the API (with_summary, newest first), as a bare JsonResponse.

    One row more is read than shown, as the API's cursor pages do to know whether a next page
    exists: both views send PostgreSQL the same SQL, one query a request (the API finds a key it
    has checked before without a query; this view finds its organization once per process).
    """
    organization = _organization()
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
        for order in list(orders[: ROWS + 1])[:ROWS]
    ]
    return JsonResponse({"results": rows})


urlpatterns = [path("bench/plain-orders/", plain_orders), *project_urlpatterns]
