from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from apps.common.bulk_load import foreign_keys_checked_at_end, load_rows, reserve_ids
from apps.orders.models import Order, OrderLine
from tests.orders.factories import make_customer, make_organization, make_product

pytestmark = pytest.mark.django_db

ORDER_COLUMNS = ("id", "organization_id", "customer_id", "number", "status", "currency", "total")
ORDER_COLUMNS += ("created_at", "updated_at")
LINE_COLUMNS = ("organization_id", "order_id", "product_id", "quantity", "unit_price")
LINE_COLUMNS += ("line_total",)
only_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="foreign keys are dropped and re-added on PostgreSQL"
)


def order_row(order_id, customer, number):
    created = customer.created_at
    return (
        order_id,
        customer.organization_id,
        customer.pk,
        number,
        "pending",
        "EUR",
        Decimal("2.00"),
        created,
        created,
    )


def test_rows_loaded_under_reserved_ids_can_reference_each_other():
    organization = make_organization()
    customer = make_customer(organization)
    product = make_product(organization)
    with transaction.atomic():
        ids = reserve_ids(Order, 3)
        load_rows(Order, ORDER_COLUMNS, [order_row(pk, customer, f"N-{pk}") for pk in ids])
        load_rows(
            OrderLine,
            LINE_COLUMNS,
            [(organization.pk, pk, product.pk, 1, Decimal("2.00"), Decimal("2.00")) for pk in ids],
        )

    assert len(set(ids)) == 3
    assert sorted(OrderLine.objects.values_list("order_id", flat=True)) == sorted(ids)


def test_reserved_ids_are_not_given_again():
    organization = make_organization()
    customer = make_customer(organization)
    with transaction.atomic():
        first = reserve_ids(Order, 2)
        load_rows(Order, ORDER_COLUMNS, [order_row(pk, customer, f"N-{pk}") for pk in first])
    with transaction.atomic():
        second = reserve_ids(Order, 2)

    assert not set(first) & set(second)


@only_postgresql
def test_foreign_keys_are_back_after_the_load():
    def keys():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE contype = 'f' AND conrelid = 'orders_orderline'::regclass ORDER BY conname"
            )
            return cursor.fetchall()

    before = keys()
    with transaction.atomic(), foreign_keys_checked_at_end(OrderLine):
        pass

    assert keys() == before


@only_postgresql
def test_a_row_loaded_with_a_missing_reference_is_refused_at_the_end():
    organization = make_organization()
    product = make_product(organization)
    missing_order = 10**9
    line = (organization.pk, missing_order, product.pk, 1, Decimal("1"), Decimal("1"))
    with (
        pytest.raises(IntegrityError),
        transaction.atomic(),
        foreign_keys_checked_at_end(OrderLine),
    ):
        load_rows(OrderLine, LINE_COLUMNS, [line])

    assert not OrderLine.objects.exists()


@only_postgresql
@pytest.mark.django_db(transaction=True)
def test_foreign_keys_are_only_dropped_inside_a_transaction():
    with pytest.raises(RuntimeError, match="transaction"), foreign_keys_checked_at_end(OrderLine):
        pass
