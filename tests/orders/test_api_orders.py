"""Orders: create, list, retrieve, transitions, filters, pagination, idempotency."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.orders import services
from apps.orders.models import Order, Product
from tests.orders.conftest import queries_for
from tests.orders.factories import make_customer, make_product

pytestmark = [pytest.mark.django_db, pytest.mark.no_nplusone]


def order_body(customer, *lines):
    return {
        "customer": customer.pk,
        "lines": [{"product": product.pk, "quantity": quantity} for product, quantity in lines],
    }


def test_create_order_answers_201_with_priced_lines(api, customer, organization):
    mug = make_product(organization, price=Decimal("3.20"), stock=5)
    response = api.post("/api/v1/orders/", order_body(customer, (mug, 2)), format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id",
        "number",
        "status",
        "customer",
        "currency",
        "total",
        "lines",
        "created_at",
    }
    assert body["status"] == "pending"
    assert body["total"] == "6.40"
    assert body["customer"]["id"] == customer.pk
    assert body["lines"] == [
        {
            "product": {"id": mug.pk, "sku": mug.sku, "name": mug.name},
            "quantity": 2,
            "unit_price": "3.20",
            "line_total": "6.40",
        }
    ]
    assert Product.objects.get(pk=mug.pk).stock == 3


def test_ordering_more_than_the_stock_is_a_conflict_naming_the_product(api, customer, organization):
    scarce = make_product(organization, sku="LAST-ONE", stock=1)
    response = api.post("/api/v1/orders/", order_body(customer, (scarce, 2)), format="json")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "out_of_stock"
    assert "LAST-ONE" in error["message"]
    assert not Order.objects.exists()


def test_an_order_without_lines_is_a_field_error(api, customer):
    response = api.post("/api/v1/orders/", {"customer": customer.pk, "lines": []}, format="json")
    assert response.status_code == 400
    assert "lines" in response.json()["error"]["fields"]


def test_a_zero_quantity_is_a_field_error(api, customer, product):
    response = api.post("/api/v1/orders/", order_body(customer, (product, 0)), format="json")
    assert response.status_code == 400
    # List item errors are keyed by the item's index, as DRF does.
    assert response.json()["error"]["fields"]["lines"]["0"]["quantity"]


def test_the_same_product_twice_is_a_field_error(api, customer, product):
    body = order_body(customer, (product, 1), (product, 2))
    assert api.post("/api/v1/orders/", body, format="json").status_code == 400


def test_an_unknown_product_is_a_field_error(api, customer):
    body = {"customer": customer.pk, "lines": [{"product": 999999, "quantity": 1}]}
    response = api.post("/api/v1/orders/", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["lines"]["0"]["product"]


def test_an_inactive_product_is_a_conflict(api, customer, organization):
    retired = make_product(organization, is_active=False)
    response = api.post("/api/v1/orders/", order_body(customer, (retired, 1)), format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "product_unavailable"


def test_retrieve_shows_lines_with_product_sku_and_name(api, organization, customer, product):
    order = services.create_order(organization, customer, [{"product": product, "quantity": 1}])
    body = api.get(f"/api/v1/orders/{order.pk}/").json()
    assert body["number"] == order.number
    assert body["lines"][0]["product"] == {
        "id": product.pk,
        "sku": product.sku,
        "name": product.name,
    }


def test_list_rows_carry_customer_summary_and_line_count(api, organization, customer):
    products = [make_product(organization) for _ in range(3)]
    services.create_order(
        organization, customer, [{"product": product, "quantity": 1} for product in products]
    )
    row = api.get("/api/v1/orders/").json()["results"][0]
    assert row["customer"] == {"id": customer.pk, "email": customer.email, "name": customer.name}
    assert row["line_count"] == 3
    assert "lines" not in row


def _orders(organization, customer, product, count):
    for _ in range(count):
        services.create_order(organization, customer, [{"product": product, "quantity": 1}])


def test_order_list_uses_as_many_queries_for_10_rows_as_for_100(api, organization):
    product = make_product(organization, stock=1000)
    for _ in range(10):
        _orders(organization, make_customer(organization), product, 10)
    small, small_body = queries_for(api, "/api/v1/orders/?page_size=10")
    large, large_body = queries_for(api, "/api/v1/orders/?page_size=100")
    assert (len(small_body["results"]), len(large_body["results"])) == (10, 100)
    assert small == large


def test_order_list_runs_no_count_query(api, organization, customer, product):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _orders(organization, customer, product, 3)
    api.get("/api/v1/orders/")
    with CaptureQueriesContext(connection) as captured:
        api.get("/api/v1/orders/")
    # A paginator's COUNT is `SELECT COUNT(*) AS "__count"`; the line count subquery is not one.
    assert not [query for query in captured if '"__count"' in query["sql"]]


def test_order_list_is_newest_first_and_pages_by_cursor(api, organization, customer, product):
    _orders(organization, customer, product, 5)
    first = api.get("/api/v1/orders/?page_size=3").json()
    second = api.get(first["next"]).json()
    numbers = [row["number"] for row in first["results"] + second["results"]]
    assert numbers == [f"ORD-00000{n}" for n in (5, 4, 3, 2, 1)]
    assert second["next"] is None


def test_order_list_filters_by_status_and_customer(api, organization, product):
    ada, alan = make_customer(organization), make_customer(organization)
    _orders(organization, ada, product, 2)
    _orders(organization, alan, product, 1)
    services.pay(Order.objects.filter(customer=ada).first())
    assert len(api.get(f"/api/v1/orders/?customer={alan.pk}").json()["results"]) == 1
    paid = api.get("/api/v1/orders/?status=paid").json()["results"]
    assert [row["customer"]["id"] for row in paid] == [ada.pk]


def test_order_list_filters_by_creation_range(api, organization, customer, product):
    _orders(organization, customer, product, 2)
    old = Order.objects.order_by("pk").first()
    Order.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=10))
    since = (timezone.now() - dt.timedelta(days=1)).isoformat()
    response = api.get("/api/v1/orders/", {"created_after": since})
    assert [row["id"] for row in response.json()["results"]] != [old.pk]
    assert len(response.json()["results"]) == 1
    before = api.get("/api/v1/orders/", {"created_before": since}).json()["results"]
    assert [row["id"] for row in before] == [old.pk]


def test_an_invalid_status_filter_is_a_field_error(api):
    response = api.get("/api/v1/orders/?status=lost")
    assert response.status_code == 400
    assert "status" in response.json()["error"]["fields"]


@pytest.mark.parametrize("cursor", ["garbage", "cD1ub3QtYS1kYXRl", "cD0lMDA="])
def test_an_invalid_cursor_is_a_client_error(api, organization, customer, product, cursor):
    _orders(organization, customer, product, 1)
    response = api.get("/api/v1/orders/", {"cursor": cursor})
    assert response.status_code == 400
    assert "cursor" in response.json()["error"]["fields"]


@pytest.fixture
def order(organization, customer, product):
    return services.create_order(organization, customer, [{"product": product, "quantity": 2}])


def test_pay_ship_through_the_api(api, order):
    assert api.post(f"/api/v1/orders/{order.pk}/pay/").json()["status"] == "paid"
    assert api.post(f"/api/v1/orders/{order.pk}/ship/").json()["status"] == "shipped"


def test_an_invalid_transition_is_a_conflict_with_the_current_status(api, order):
    response = api.post(f"/api/v1/orders/{order.pk}/ship/")
    assert response.status_code == 409
    error = response.json()["error"]
    assert (error["code"], error["current_status"]) == ("invalid_transition", "pending")
    assert "pending" in error["message"]


def test_cancel_through_the_api_restocks(api, order, product):
    response = api.post(f"/api/v1/orders/{order.pk}/cancel/")
    assert response.json()["status"] == "cancelled"
    product.refresh_from_db()
    assert product.stock == 100


def test_cancelling_a_shipped_order_is_a_conflict(api, order):
    services.ship(services.pay(order))
    response = api.post(f"/api/v1/orders/{order.pk}/cancel/")
    assert response.status_code == 409
    assert response.json()["error"]["current_status"] == "shipped"


def test_orders_cannot_be_changed_or_deleted_through_the_api(api, order):
    assert api.delete(f"/api/v1/orders/{order.pk}/").status_code == 405
    assert api.patch(f"/api/v1/orders/{order.pk}/", {}, format="json").status_code == 405
