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


def test_seed_demo_is_deterministic():
    seed(*SMALL, "--seed", "7")
    first = list(
        Order.objects.order_by("number", "organization__slug").values_list("total", "status")
    )
    # Orders protect their customers and products: remove them first.
    OrderLine.objects.all().delete()
    Order.objects.all().delete()
    Organization.objects.all().delete()
    seed(*SMALL, "--seed", "7")
    again = list(
        Order.objects.order_by("number", "organization__slug").values_list("total", "status")
    )
    assert first == again


def test_seed_demo_reports_its_progress():
    _, err = seed(*SMALL)
    assert "orders 30/30" in err


def test_seed_demo_if_empty_does_nothing_when_an_organization_exists():
    seed(*SMALL)
    out, _ = seed(*SMALL, "--if-empty")
    assert "not loaded" in out
    assert Organization.objects.count() == 2


def test_seed_demo_refuses_to_load_twice_without_if_empty():
    seed(*SMALL)
    with pytest.raises(CommandError, match="exists already"):
        seed(*SMALL)
