from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from apps.orders.models import Customer, Order, OrderLine, Product
from tests.orders.factories import make_customer, make_product


def _violates(create):
    with pytest.raises(IntegrityError), transaction.atomic():
        create()


@pytest.mark.django_db
def test_sku_is_unique_within_an_organization(organization):
    make_product(organization, sku="MUG")
    _violates(lambda: make_product(organization, sku="MUG"))


@pytest.mark.django_db
def test_same_sku_is_allowed_in_two_organizations(organization, other_organization):
    make_product(organization, sku="MUG")
    make_product(other_organization, sku="MUG")
    assert Product.objects.filter(sku="MUG").count() == 2


@pytest.mark.django_db
def test_customer_email_is_unique_within_an_organization(organization, other_organization):
    make_customer(organization, email="a@example.com")
    make_customer(other_organization, email="a@example.com")
    _violates(lambda: make_customer(organization, email="a@example.com"))


@pytest.mark.django_db
def test_database_refuses_a_negative_price(organization):
    _violates(lambda: make_product(organization, price=Decimal("-0.01")))


@pytest.mark.django_db
def test_database_refuses_negative_stock(organization, product):
    _violates(lambda: Product.objects.filter(pk=product.pk).update(stock=-1))


@pytest.mark.django_db
def test_database_refuses_a_line_without_quantity(organization, customer, product):
    order = Order.objects.create(organization=organization, customer=customer, number="X-1")
    _violates(
        lambda: OrderLine.objects.create(
            organization=organization,
            order=order,
            product=product,
            quantity=0,
            unit_price=product.price,
            line_total=0,
        )
    )


@pytest.mark.django_db
def test_order_number_is_unique_within_an_organization(organization, customer):
    Order.objects.create(organization=organization, customer=customer, number="ORD-1")
    _violates(
        lambda: Order.objects.create(organization=organization, customer=customer, number="ORD-1")
    )


@pytest.mark.django_db
def test_database_refuses_a_paid_order_without_payment_time(organization, customer):
    _violates(
        lambda: Order.objects.create(
            organization=organization, customer=customer, number="ORD-2", status="paid"
        )
    )


@pytest.mark.django_db
def test_database_refuses_an_unknown_status(organization, customer):
    _violates(
        lambda: Order.objects.create(
            organization=organization, customer=customer, number="ORD-3", status="lost"
        )
    )


@pytest.mark.django_db
def test_a_customer_with_orders_cannot_be_deleted(organization, customer):
    from django.db.models import ProtectedError

    Order.objects.create(organization=organization, customer=customer, number="ORD-4")
    with pytest.raises(ProtectedError):
        Customer.objects.filter(pk=customer.pk).delete()


def test_every_domain_table_has_an_index_leading_with_organization():
    for model in (Customer, Product, Order, OrderLine):
        leading = [index.fields[0] for index in model._meta.indexes]
        assert "organization" in leading, model.__name__
