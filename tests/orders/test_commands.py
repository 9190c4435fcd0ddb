import io

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from apps.orders.models import Customer, Order, OrderLine, OrderNumberSequence, Product
from apps.tenants.models import Organization

pytestmark = pytest.mark.django_db

SMALL = ["--orgs", "2", "--customers", "5", "--products", "6", "--orders", "30"]


def seed(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_seed_demo_loads_the_requested_amounts():
    seed(*SMALL, "--batch-size", "7")
    assert Organization.objects.count() == 2
    assert Customer.objects.count() == 10
    assert Product.objects.count() == 12
    assert Order.objects.count() == 60
    assert OrderLine.objects.count() >= 60


def test_seed_demo_orders_are_consistent():
    seed(*SMALL)
    for order in Order.objects.annotate(lines_total=Sum("lines__line_total")):
        assert order.total == order.lines_total
    assert set(Order.objects.values_list("status", flat=True)) <= {
        "pending",
        "paid",
        "shipped",
        "cancelled",
    }
    assert list(OrderNumberSequence.objects.values_list("last_number", flat=True)) == [30, 30]


def seeded_data():
    """Every row seed_demo wrote, without ids (which depend on the database's sequences)."""
    return {
        "customers": sorted(Customer.objects.values_list("email", "name", "created_at")),
        "products": sorted(
            Product.objects.values_list("sku", "name", "price", "stock", "is_active", "created_at")
        ),
        "orders": sorted(
            Order.objects.values_list(
                "organization__slug",
                "number",
                "customer__email",
                "status",
                "total",
                "created_at",
                "paid_at",
                "shipped_at",
                "cancelled_at",
            )
        ),
        "lines": sorted(
            OrderLine.objects.values_list(
                "order__organization__slug",
                "order__number",
                "product__sku",
                "quantity",
                "unit_price",
                "line_total",
            )
        ),
    }


def delete_everything():
    # Orders protect their customers and products: remove them first.
    OrderLine.objects.all().delete()
    Order.objects.all().delete()
    Organization.objects.all().delete()


def test_seed_demo_writes_the_same_rows_for_the_same_seed():
    seed(*SMALL, "--seed", "7")
    first = seeded_data()
    delete_everything()
    seed(*SMALL, "--seed", "7", "--batch-size", "4")

    assert seeded_data() == first


def test_seed_demo_writes_other_rows_for_another_seed():
    seed(*SMALL, "--seed", "7")
    first = seeded_data()
    delete_everything()
    seed(*SMALL, "--seed", "8")

    assert seeded_data()["lines"] != first["lines"]


def test_seed_demo_reports_its_progress():
    _, err = seed(*SMALL)
    assert "orders 60/60" in err


def test_seed_demo_if_empty_does_nothing_when_an_organization_exists():
    seed(*SMALL)
    out, _ = seed(*SMALL, "--if-empty")
    assert "not loaded" in out
    assert Organization.objects.count() == 2


def test_seed_demo_refuses_to_load_twice_without_if_empty():
    seed(*SMALL)
    with pytest.raises(CommandError, match="exists already"):
        seed(*SMALL)
