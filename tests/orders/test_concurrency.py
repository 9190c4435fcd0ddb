import threading

import pytest
from django.db import connection, connections

from apps.orders import services
from apps.orders.models import Order, OrderLine, Product
from tests.orders.factories import make_customer, make_organization, make_product

THREADS = 8
HOT_STOCK = 5

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="row locks and real write concurrency need PostgreSQL (CI runs this suite on it)",
    ),
]


def test_racing_orders_for_the_last_units_neither_oversell_nor_deadlock():
    organization = make_organization()
    customer = make_customer(organization)
    hot = make_product(organization, stock=HOT_STOCK)
    plenty = make_product(organization, stock=1000)
    barrier = threading.Barrier(THREADS)
    outcomes = []

    def buy(index):
        # Half the buyers list the products in the opposite order: locks must still be taken
        # in one order, or these would deadlock.
        lines = [{"product": hot.pk, "quantity": 1}, {"product": plenty.pk, "quantity": 1}]
        if index % 2:
            lines.reverse()
        try:
            barrier.wait(timeout=10)
            services.create_order(organization, customer, lines)
            outcomes.append("created")
        except services.OutOfStock:
            outcomes.append("out of stock")
        except Exception as error:
            outcomes.append(repr(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=buy, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == sorted(
        ["created"] * HOT_STOCK + ["out of stock"] * (THREADS - HOT_STOCK)
    )
    hot.refresh_from_db()
    plenty.refresh_from_db()
    assert hot.stock == 0
    assert plenty.stock == 1000 - HOT_STOCK
    assert OrderLine.objects.filter(product=hot).count() == HOT_STOCK
    numbers = list(Order.objects.values_list("number", flat=True))
    assert len(set(numbers)) == HOT_STOCK


def test_concurrent_cancels_restock_exactly_once():
    organization = make_organization()
    customer = make_customer(organization)
    product = make_product(organization, stock=10)
    order = services.create_order(organization, customer, [{"product": product, "quantity": 4}])
    barrier = threading.Barrier(4)
    outcomes = []

    def cancel():
        try:
            barrier.wait(timeout=10)
            services.cancel(Order.objects.get(pk=order.pk))
            outcomes.append("cancelled")
        except services.InvalidTransition:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=cancel) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["cancelled", "refused", "refused", "refused"]
    assert Product.objects.get(pk=product.pk).stock == 10


def test_the_first_concurrent_orders_of_an_organization_are_numbered_one_to_n():
    organization = make_organization()
    customer = make_customer(organization)
    products = [make_product(organization, stock=10) for _ in range(THREADS)]
    barrier = threading.Barrier(THREADS)
    outcomes = []

    def buy(product):
        try:
            barrier.wait(timeout=10)
            outcomes.append(
                services.create_order(organization, customer, [{"product": product, "quantity": 1}])
            )
        except Exception as error:
            outcomes.append(repr(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=buy, args=(product,)) for product in products]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(Order.objects.values_list("number", flat=True)) == [
        services.format_order_number(number) for number in range(1, THREADS + 1)
    ]
