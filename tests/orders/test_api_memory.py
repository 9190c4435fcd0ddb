"""A served API request's objects are freed by reference counting once the server closes its
response (apps/api/views.py): DRF's reference cycles would otherwise hold them, a page's rows
included, until the garbage collector next runs."""

import gc
import weakref

import pytest
from django.db.models.signals import post_init

from apps.orders import services
from apps.orders.models import Order

pytestmark = [pytest.mark.django_db, pytest.mark.no_nplusone]


@pytest.fixture
def orders_built():
    """Weak references to every Order instance built while the test runs."""
    built = []

    def remember(sender, instance, **kwargs):
        built.append(weakref.ref(instance))

    post_init.connect(remember, sender=Order, weak=False, dispatch_uid="orders_built")
    yield built
    post_init.disconnect(sender=Order, dispatch_uid="orders_built")


@pytest.fixture
def collector_off():
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def test_a_closed_list_response_leaves_none_of_its_rows_alive(
    api, organization, customer, product, orders_built, collector_off
):
    for _ in range(3):
        services.create_order(organization, customer, [{"product": product, "quantity": 1}])
    orders_built.clear()

    response = api.get("/api/v1/orders/")  # the test client closes it, as a server does
    assert response.status_code == 200
    assert len(response.data["results"]) == 3
    assert len(orders_built) >= 3
    del response

    assert [order for order in (ref() for ref in orders_built) if order is not None] == []
