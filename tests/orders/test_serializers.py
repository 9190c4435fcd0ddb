from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from rest_framework import serializers

from apps.orders.api.serializers import OrderListSerializer
from apps.orders.models import Order
from apps.orders.services import create_order
from tests.orders.factories import make_customer, make_product


@pytest.fixture
def orders(organization):
    customer = make_customer(organization, name="Zoë O'Brien")
    products = [make_product(organization, sku=f"S-{n}", stock=10) for n in range(3)]
    create_order(
        organization, customer, [{"product": product, "quantity": 2} for product in products]
    )
    create_order(organization, customer, [{"product": products[0], "quantity": 1}])
    return list(Order.objects.for_org(organization).with_summary())


def rendered_and_generic(orders):
    serializer = OrderListSerializer(orders, many=True)
    rendered = serializer.data
    generic = [
        serializers.ModelSerializer.to_representation(serializer.child, order) for order in orders
    ]
    return rendered, generic


@pytest.mark.django_db
def test_an_order_list_row_is_what_model_serializer_renders(orders):
    rendered, generic = rendered_and_generic(orders)

    assert rendered == generic
    assert [list(row) for row in rendered] == [list(row) for row in generic]


@pytest.mark.django_db
def test_an_order_list_row_renders_times_in_the_current_time_zone_as_model_serializer_does(orders):
    with timezone.override("Pacific/Chatham"):
        rendered, generic = rendered_and_generic(orders)

    assert [row["created_at"] for row in rendered] == [row["created_at"] for row in generic]
    assert all(row["created_at"].endswith(("+12:45", "+13:45")) for row in rendered)


@pytest.mark.django_db
@pytest.mark.parametrize("total", ["12.5", "3", "0.125", "1E+3", "-0.50", "12.50"])
def test_an_order_list_row_writes_any_total_as_model_serializer_does(orders, total):
    orders[0].total = Decimal(total)

    rendered, generic = rendered_and_generic(orders)

    assert [row["total"] for row in rendered] == [row["total"] for row in generic]


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ["UTC", "Etc/UTC", "Europe/Paris"])
def test_an_order_list_row_writes_times_of_any_zone_as_model_serializer_does(orders, zone):
    orders[0].created_at = orders[0].created_at.astimezone(ZoneInfo("Asia/Kathmandu"))

    with timezone.override(zone):
        rendered, generic = rendered_and_generic(orders)

    assert [row["created_at"] for row in rendered] == [row["created_at"] for row in generic]
