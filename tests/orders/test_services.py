from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.orders import services
from apps.orders.models import Order, Product
from tests.orders.factories import make_customer, make_product


@pytest.mark.django_db
def test_create_order_prices_lines_from_products_and_takes_stock(organization, customer):
    mug = make_product(organization, price=Decimal("4.50"), stock=10)
    pen = make_product(organization, price=Decimal("1.25"), stock=5)
    order = services.create_order(
        organization,
        customer,
        [{"product": mug, "quantity": 2}, {"product": pen.pk, "quantity": 4}],
    )
    assert order.status == Order.Status.PENDING
    assert order.total == Decimal("14.00")
    lines = {line.product_id: line for line in order.lines.all()}
    assert lines[mug.pk].unit_price == Decimal("4.50")
    assert lines[mug.pk].line_total == Decimal("9.00")
    assert lines[pen.pk].line_total == Decimal("5.00")
    mug.refresh_from_db()
    pen.refresh_from_db()
    assert (mug.stock, pen.stock) == (8, 1)


@pytest.mark.django_db
def test_create_order_refuses_more_than_the_stock_and_writes_nothing(organization, customer):
    plenty = make_product(organization, stock=10)
    scarce = make_product(organization, stock=1, sku="SCARCE")
    with pytest.raises(services.OutOfStock, match="SCARCE"):
        services.create_order(
            organization,
            customer,
            [{"product": plenty, "quantity": 3}, {"product": scarce, "quantity": 2}],
        )
    plenty.refresh_from_db()
    assert plenty.stock == 10
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_create_order_refuses_an_inactive_product(organization, customer):
    retired = make_product(organization, is_active=False)
    with pytest.raises(services.ProductUnavailable):
        services.create_order(organization, customer, [{"product": retired, "quantity": 1}])


@pytest.mark.django_db
def test_order_numbers_count_up_per_organization(organization, other_organization):
    customer = make_customer(organization)
    other_customer = make_customer(other_organization)
    product = make_product(organization)
    other_product = make_product(other_organization)
    first = services.create_order(organization, customer, [{"product": product, "quantity": 1}])
    second = services.create_order(organization, customer, [{"product": product, "quantity": 1}])
    other = services.create_order(
        other_organization, other_customer, [{"product": other_product, "quantity": 1}]
    )
    assert (first.number, second.number, other.number) == ("ORD-000001", "ORD-000002", "ORD-000001")


@pytest.fixture
def order(organization, customer, product):
    return services.create_order(organization, customer, [{"product": product, "quantity": 3}])


@pytest.mark.django_db
def test_pay_then_ship_records_both_times(order):
    paid = services.pay(order)
    shipped = services.ship(paid)
    assert shipped.status == Order.Status.SHIPPED
    assert shipped.paid_at is not None
    assert shipped.shipped_at >= shipped.paid_at


@pytest.mark.django_db
def test_a_pending_order_cannot_be_shipped(order):
    with pytest.raises(services.InvalidTransition) as raised:
        services.ship(order)
    assert raised.value.order.status == Order.Status.PENDING


@pytest.mark.django_db
def test_a_shipped_order_cannot_be_cancelled(order):
    services.ship(services.pay(order))
    with pytest.raises(services.InvalidTransition):
        services.cancel(order)


@pytest.mark.django_db
def test_an_order_cannot_be_paid_twice(order):
    services.pay(order)
    with pytest.raises(services.InvalidTransition):
        services.pay(order)


@pytest.mark.django_db
@pytest.mark.parametrize("paid_first", [False, True], ids=["pending", "paid"])
def test_cancel_puts_the_units_back_in_stock(order, product, paid_first):
    if paid_first:
        services.pay(order)
    product.refresh_from_db()
    assert product.stock == 97
    cancelled = services.cancel(order)
    product.refresh_from_db()
    assert cancelled.status == Order.Status.CANCELLED
    assert cancelled.cancelled_at is not None
    assert product.stock == 100


@pytest.mark.django_db
def test_a_cancelled_order_restocks_only_once(order, product):
    services.cancel(order)
    with pytest.raises(services.InvalidTransition):
        services.cancel(order)
    product.refresh_from_db()
    assert product.stock == 100


@pytest.mark.django_db
def test_create_order_refuses_a_customer_of_another_organization(organization, other_organization):
    stranger = make_customer(other_organization)
    product = make_product(organization)
    with pytest.raises(ValueError, match="another organization"):
        services.create_order(organization, stranger, [{"product": product, "quantity": 1}])


@pytest.mark.django_db
def test_create_order_refuses_a_product_of_another_organization(organization, other_organization):
    customer = make_customer(organization)
    foreign = make_product(other_organization)
    with pytest.raises(Product.DoesNotExist):
        services.create_order(organization, customer, [{"product": foreign, "quantity": 1}])


def product_updates(captured):
    return [
        query["sql"] for query in captured if query["sql"].startswith('UPDATE "orders_product"')
    ]


@pytest.mark.django_db
def test_create_order_takes_the_stock_of_all_its_lines_in_one_statement(organization, customer):
    products = [make_product(organization, stock=50) for _ in range(6)]
    lines = [
        {"product": product, "quantity": number + 1} for number, product in enumerate(products)
    ]

    with CaptureQueriesContext(connection) as captured:
        services.create_order(organization, customer, lines)

    assert len(product_updates(captured)) == 1
    stocks = dict(Product.objects.filter(organization=organization).values_list("pk", "stock"))
    assert stocks == {product.pk: 50 - (number + 1) for number, product in enumerate(products)}


@pytest.mark.django_db
def test_cancel_puts_back_the_stock_of_all_its_lines_in_one_statement(organization, customer):
    products = [make_product(organization, stock=50) for _ in range(6)]
    lines = [
        {"product": product, "quantity": number + 1} for number, product in enumerate(products)
    ]
    order = services.create_order(organization, customer, lines)

    with CaptureQueriesContext(connection) as captured:
        services.cancel(order)

    assert len(product_updates(captured)) == 1
    stocks = set(Product.objects.filter(organization=organization).values_list("stock", flat=True))
    assert stocks == {50}


@pytest.mark.django_db
def test_create_order_takes_the_order_number_after_every_product_and_stock_statement(
    organization, customer
):
    products = [make_product(organization, stock=50) for _ in range(3)]

    with CaptureQueriesContext(connection) as captured:
        services.create_order(
            organization, customer, [{"product": product, "quantity": 1} for product in products]
        )

    # Savepoints are the test's own transaction (in production, the commit).
    statements = [query["sql"] for query in captured if "SAVEPOINT" not in query["sql"]]
    numbering = next(
        index for index, sql in enumerate(statements) if '"orders_ordernumbersequence"' in sql
    )
    after = statements[numbering + 1 :]
    assert not any('"orders_product"' in sql for sql in after)
    if connection.vendor == "postgresql":
        # The lines went in before; only the order's own row is written under the number lock.
        assert [sql.split("(")[0].strip() for sql in after] == ['INSERT INTO "orders_order"']
