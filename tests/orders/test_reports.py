import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.orders import services
from apps.orders.models import Order, OrderLine
from tests.orders.factories import make_product

pytestmark = pytest.mark.django_db


@pytest.fixture
def sales(organization, customer):
    """Three paid orders today (one shipped), one pending, one cancelled, one paid 3 days ago."""
    mug = make_product(organization, price=Decimal("5.00"), sku="MUG", stock=1000)
    pen = make_product(organization, price=Decimal("2.00"), sku="PEN", stock=1000)

    def order(lines, *transitions, days_ago=0):
        created = services.create_order(organization, customer, lines)
        for transition in transitions:
            created = transition(created)
        if days_ago:
            Order.objects.filter(pk=created.pk).update(
                created_at=timezone.now() - dt.timedelta(days=days_ago)
            )
        return created

    order([{"product": mug, "quantity": 2}], services.pay)
    order([{"product": mug, "quantity": 1}, {"product": pen, "quantity": 5}], services.pay)
    order([{"product": pen, "quantity": 1}], services.pay, services.ship)
    order([{"product": mug, "quantity": 9}])
    order([{"product": mug, "quantity": 9}], services.cancel)
    order([{"product": pen, "quantity": 3}], services.pay, days_ago=3)
    return {"mug": mug, "pen": pen}


def test_sales_per_day_counts_paid_and_shipped_orders(api, sales):
    body = api.get("/api/v1/reports/sales/").json()
    days = {row["date"]: row for row in body["results"]}
    today = timezone.localdate()
    assert days[today.isoformat()] == {"date": today.isoformat(), "orders": 3, "revenue": "27.00"}
    three_days_ago = (today - dt.timedelta(days=3)).isoformat()
    assert days[three_days_ago]["revenue"] == "6.00"


def test_sales_default_to_the_last_30_days_with_every_day_listed(api):
    body = api.get("/api/v1/reports/sales/").json()
    today = timezone.localdate()
    assert body["end"] == today.isoformat()
    assert body["start"] == (today - dt.timedelta(days=29)).isoformat()
    assert len(body["results"]) == 30
    assert body["results"][0] == {"date": body["start"], "orders": 0, "revenue": "0.00"}


def test_sales_for_a_given_range(api, sales):
    today = timezone.localdate()
    start = today - dt.timedelta(days=5)
    end = today - dt.timedelta(days=1)
    body = api.get(f"/api/v1/reports/sales/?start={start}&end={end}").json()
    assert len(body["results"]) == 5
    assert sum(row["orders"] for row in body["results"]) == 1


def test_top_products_rank_by_units_sold(api, sales):
    body = api.get("/api/v1/reports/top-products/").json()
    assert [(row["sku"], row["quantity"], row["revenue"]) for row in body["results"]] == [
        ("PEN", 9, "18.00"),
        ("MUG", 3, "15.00"),
    ]


def test_top_products_limit(api, sales):
    body = api.get("/api/v1/reports/top-products/?limit=1").json()
    assert [row["sku"] for row in body["results"]] == ["PEN"]


@pytest.mark.parametrize(
    "query",
    [
        "start=2026-01-10&end=2026-01-01",
        "start=2020-01-01&end=2026-01-01",
        "start=yesterday",
        "limit=0",
        "end=0001-01-01",
        "start=9999-12-31&end=9999-12-31",
        "limit=101",
    ],
)
def test_bad_report_parameters_are_field_errors(api, query):
    response = api.get(f"/api/v1/reports/top-products/?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]


def test_a_full_year_is_allowed(api):
    response = api.get("/api/v1/reports/sales/?start=2024-01-01&end=2024-12-31")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 366


def test_reports_are_cached_briefly(api, sales):
    first = api.get("/api/v1/reports/top-products/").json()
    OrderLine.objects.update(quantity=1)  # behind the services' back: no new report version
    assert api.get("/api/v1/reports/top-products/").json() == first
    assert api.get("/api/v1/reports/top-products/?limit=5").json() != first


def test_a_report_right_after_an_order_is_paid_shows_it(
    api, sales, organization, customer, django_capture_on_commit_callbacks
):
    first = api.get("/api/v1/reports/top-products/").json()
    with django_capture_on_commit_callbacks(execute=True):
        order = services.create_order(
            organization, customer, [{"product": sales["mug"], "quantity": 50}]
        )
    with django_capture_on_commit_callbacks(execute=True):
        services.pay(order)
    assert api.get("/api/v1/reports/top-products/").json() != first
