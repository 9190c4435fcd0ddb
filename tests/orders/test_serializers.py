import pytest
from rest_framework import serializers

from apps.orders.api.serializers import OrderListSerializer
from apps.orders.models import Order
from apps.orders.services import create_order
from tests.orders.factories import make_customer, make_product


@pytest.mark.django_db
def test_an_order_list_row_is_what_model_serializer_renders(organization):
    customer = make_customer(organization, name="Zoë O'Brien")
    products = [make_product(organization, sku=f"S-{n}", stock=10) for n in range(3)]
    create_order(
        organization, customer, [{"product": product, "quantity": 2} for product in products]
    )
    create_order(organization, customer, [{"product": products[0], "quantity": 1}])
    orders = list(Order.objects.for_org(organization).with_summary())
    serializer = OrderListSerializer(orders, many=True)

    rendered = serializer.data
    generic = [
        serializers.ModelSerializer.to_representation(serializer.child, order) for order in orders
    ]

    assert rendered == generic
    assert [list(row) for row in rendered] == [list(row) for row in generic]
