"""Customers and products: CRUD, filters, search, ordering, pagination, delete protection."""

from decimal import Decimal

import pytest

from apps.orders import services
from apps.orders.models import Customer, Product
from tests.orders.conftest import queries_for
from tests.orders.factories import make_customer, make_product

pytestmark = [pytest.mark.django_db, pytest.mark.no_nplusone]


def test_product_fields_are_exactly_the_documented_ones(api, product):
    body = api.get(f"/api/v1/products/{product.pk}/").json()
    assert set(body) == {"id", "sku", "name", "price", "stock", "is_active"}
    assert body["price"] == "10.00"


def test_customer_fields_are_exactly_the_documented_ones(api, customer):
    body = api.get(f"/api/v1/customers/{customer.pk}/").json()
    assert body == {"id": customer.pk, "email": customer.email, "name": customer.name}


def test_create_product_belongs_to_the_key_organization(api, organization):
    response = api.post(
        "/api/v1/products/",
        {"sku": "MUG-1", "name": "Mug", "price": "7.50", "stock": 3},
        format="json",
    )
    assert response.status_code == 201
    product = Product.objects.get(pk=response.json()["id"])
    assert product.organization == organization
    assert product.price == Decimal("7.50")


def test_create_customer(api, organization):
    response = api.post(
        "/api/v1/customers/", {"email": "ada@example.com", "name": "Ada"}, format="json"
    )
    assert response.status_code == 201
    assert Customer.objects.get(email="ada@example.com").organization == organization


def test_update_and_partial_update_a_product(api, product):
    response = api.put(
        f"/api/v1/products/{product.pk}/",
        {"sku": "NEW", "name": "Renamed", "price": "1.00", "stock": 1, "is_active": False},
        format="json",
    )
    assert response.status_code == 200
    response = api.patch(f"/api/v1/products/{product.pk}/", {"stock": 9}, format="json")
    assert response.json()["stock"] == 9
    product.refresh_from_db()
    assert (product.sku, product.stock, product.is_active) == ("NEW", 9, False)


def test_update_a_customer(api, customer):
    response = api.patch(f"/api/v1/customers/{customer.pk}/", {"name": "Grace"}, format="json")
    assert response.status_code == 200
    customer.refresh_from_db()
    assert customer.name == "Grace"


def test_delete_an_unused_product(api, product):
    assert api.delete(f"/api/v1/products/{product.pk}/").status_code == 204
    assert not Product.objects.filter(pk=product.pk).exists()


def test_delete_an_unused_customer(api, customer):
    assert api.delete(f"/api/v1/customers/{customer.pk}/").status_code == 204


def test_deleting_a_product_that_orders_reference_is_a_conflict(
    api, organization, customer, product
):
    services.create_order(organization, customer, [{"product": product, "quantity": 1}])
    response = api.delete(f"/api/v1/products/{product.pk}/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert Product.objects.filter(pk=product.pk).exists()


def test_deleting_a_customer_that_orders_reference_is_a_conflict(
    api, organization, customer, product
):
    services.create_order(organization, customer, [{"product": product, "quantity": 1}])
    assert api.delete(f"/api/v1/customers/{customer.pk}/").status_code == 409


def test_duplicate_sku_is_a_field_error(api, product):
    response = api.post(
        "/api/v1/products/",
        {"sku": product.sku, "name": "Again", "price": "1.00"},
        format="json",
    )
    assert response.status_code == 400
    assert "sku" in response.json()["error"]["fields"]


def test_duplicate_email_is_a_field_error(api, customer):
    response = api.post(
        "/api/v1/customers/", {"email": customer.email, "name": "Again"}, format="json"
    )
    assert response.status_code == 400
    assert "email" in response.json()["error"]["fields"]


def test_negative_price_and_stock_are_field_errors(api):
    response = api.post(
        "/api/v1/products/",
        {"sku": "NEG", "name": "Negative", "price": "-1.00", "stock": -1},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"price", "stock"}


def test_products_filter_by_active_and_price(api, organization):
    make_product(organization, price=Decimal("5.00"), sku="CHEAP")
    make_product(organization, price=Decimal("50.00"), sku="DEAR")
    make_product(organization, price=Decimal("60.00"), sku="GONE", is_active=False)
    response = api.get("/api/v1/products/?is_active=true&min_price=10")
    assert [row["sku"] for row in response.json()["results"]] == ["DEAR"]


def test_products_search_sku_and_name(api, organization):
    make_product(organization, sku="KETTLE-1", name="Kettle")
    make_product(organization, sku="MUG-1", name="Blue mug")
    response = api.get("/api/v1/products/?search=mug")
    assert [row["sku"] for row in response.json()["results"]] == ["MUG-1"]


def test_products_ordering_by_price_descending(api, organization):
    for price in ("3.00", "9.00", "6.00"):
        make_product(organization, price=Decimal(price))
    response = api.get("/api/v1/products/?ordering=-price")
    assert [row["price"] for row in response.json()["results"]] == ["9.00", "6.00", "3.00"]


def test_customers_filter_by_email_and_search_by_name(api, organization):
    make_customer(organization, email="ada@example.com", name="Ada Lovelace")
    make_customer(organization, email="alan@example.com", name="Alan Turing")
    assert [
        row["name"] for row in api.get("/api/v1/customers/?email=ADA@example.com").json()["results"]
    ] == ["Ada Lovelace"]
    assert [
        row["email"] for row in api.get("/api/v1/customers/?search=turing").json()["results"]
    ] == ["alan@example.com"]


def test_product_pages_follow_the_cursor_without_gaps(api, organization):
    created = [make_product(organization).pk for _ in range(5)]
    seen = []
    url = "/api/v1/products/?page_size=2"
    while url:
        body = api.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
    assert seen == created


def test_page_size_is_clamped_to_100(api, organization):
    Product.objects.bulk_create(
        Product(organization=organization, sku=f"P{index}", name="p", price=1)
        for index in range(105)
    )
    body = api.get("/api/v1/products/?page_size=1000").json()
    assert len(body["results"]) == 100


@pytest.mark.parametrize("path", ["/api/v1/products/", "/api/v1/customers/"])
def test_catalog_lists_use_as_many_queries_for_10_rows_as_for_100(api, organization, path):
    for _ in range(100):
        make_product(organization)
        make_customer(organization)
    small, small_body = queries_for(api, f"{path}?page_size=10")
    large, large_body = queries_for(api, f"{path}?page_size=100")
    assert (len(small_body["results"]), len(large_body["results"])) == (10, 100)
    assert small == large
