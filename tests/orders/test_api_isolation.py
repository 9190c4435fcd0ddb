"""With organization A's key, B's rows do not exist."""

import pytest

from apps.orders import services
from apps.orders.models import Customer, Order, Product
from tests.orders.factories import make_customer, make_product

pytestmark = [pytest.mark.django_db, pytest.mark.no_nplusone]


@pytest.fixture
def foreign(other_organization):
    """B's customer, product and order."""
    customer = make_customer(other_organization)
    product = make_product(other_organization)
    order = services.create_order(
        other_organization, customer, [{"product": product, "quantity": 1}]
    )
    return {"customers": customer, "products": product, "orders": order}


OBJECT_REQUESTS = [
    ("get", "customers", ""),
    ("put", "customers", ""),
    ("patch", "customers", ""),
    ("delete", "customers", ""),
    ("get", "products", ""),
    ("put", "products", ""),
    ("patch", "products", ""),
    ("delete", "products", ""),
    ("get", "orders", ""),
    ("post", "orders", "pay/"),
    ("post", "orders", "ship/"),
    ("post", "orders", "cancel/"),
]


@pytest.mark.parametrize(("method", "resource", "suffix"), OBJECT_REQUESTS)
def test_another_organizations_object_is_not_found(api, foreign, method, resource, suffix):
    row = foreign[resource]
    body = {"email": "x@example.com", "name": "x", "sku": "X", "price": "1.00"}
    response = getattr(api, method)(f"/api/v1/{resource}/{row.pk}/{suffix}", body, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_nothing_of_another_organization_changed(api, foreign):
    for method, resource, suffix in OBJECT_REQUESTS:
        getattr(api, method)(f"/api/v1/{resource}/{foreign[resource].pk}/{suffix}")
    assert Customer.objects.filter(pk=foreign["customers"].pk).exists()
    assert Product.objects.get(pk=foreign["products"].pk).stock == 99
    assert Order.objects.get(pk=foreign["orders"].pk).status == "pending"


@pytest.mark.parametrize("resource", ["customers", "products", "orders"])
def test_lists_show_only_the_keys_organization(api, foreign, organization, resource):
    mine_customer = make_customer(organization)
    mine_product = make_product(organization)
    services.create_order(organization, mine_customer, [{"product": mine_product, "quantity": 1}])
    ids = [row["id"] for row in api.get(f"/api/v1/{resource}/").json()["results"]]
    assert len(ids) == 1
    assert foreign[resource].pk not in ids


def test_ordering_for_another_organizations_customer_is_a_field_error(api, foreign, product):
    body = {"customer": foreign["customers"].pk, "lines": [{"product": product.pk, "quantity": 1}]}
    response = api.post("/api/v1/orders/", body, format="json")
    assert response.status_code == 400
    assert "customer" in response.json()["error"]["fields"]


def test_ordering_another_organizations_product_is_a_field_error(api, foreign, customer):
    body = {"customer": customer.pk, "lines": [{"product": foreign["products"].pk, "quantity": 1}]}
    response = api.post("/api/v1/orders/", body, format="json")
    assert response.status_code == 400
    assert "lines" in response.json()["error"]["fields"]
    assert Product.objects.get(pk=foreign["products"].pk).stock == 99


def test_filtering_orders_by_another_organizations_customer_finds_nothing(api, foreign):
    response = api.get(f"/api/v1/orders/?customer={foreign['customers'].pk}")
    assert response.json()["results"] == []


@pytest.mark.parametrize("report", ["sales", "top-products"])
def test_reports_count_only_the_keys_organization(api, foreign, report):
    services.pay(foreign["orders"])
    results = api.get(f"/api/v1/reports/{report}/").json()["results"]
    if report == "sales":
        assert sum(day["orders"] for day in results) == 0
    else:
        assert results == []


def test_creating_with_the_same_sku_as_another_organization_is_allowed(api, foreign):
    body = {"sku": foreign["products"].sku, "name": "Mine", "price": "1.00"}
    assert api.post("/api/v1/products/", body, format="json").status_code == 201
