import pytest

from apps.orders.models import IdempotencyRecord, Order, Product

pytestmark = [pytest.mark.django_db, pytest.mark.no_nplusone]


@pytest.fixture
def body(customer, product):
    return {"customer": customer.pk, "lines": [{"product": product.pk, "quantity": 1}]}


def post(api, body, key):
    return api.post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_retry_with_the_same_key_replays_the_first_answer_and_creates_nothing(api, body, product):
    first = post(api, body, "order-1")
    Order.objects.update(status="cancelled", cancelled_at="2026-01-01T00:00:00Z")
    retry = post(api, body, "order-1")
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1
    assert Product.objects.get(pk=product.pk).stock == 99


def test_the_same_key_with_another_body_is_422(api, body):
    post(api, body, "order-2")
    body["lines"][0]["quantity"] = 2
    response = post(api, body, "order-2")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1


def test_different_keys_create_different_orders(api, body):
    post(api, body, "a")
    post(api, body, "b")
    assert Order.objects.count() == 2


def test_keys_are_per_organization(api, other_api, body, other_organization):
    from tests.orders.factories import make_customer, make_product

    post(api, body, "shared-key")
    other_body = {
        "customer": make_customer(other_organization).pk,
        "lines": [{"product": make_product(other_organization).pk, "quantity": 1}],
    }
    assert post(other_api, other_body, "shared-key").status_code == 201
    assert IdempotencyRecord.objects.filter(key="shared-key").count() == 2


def test_a_failed_request_stores_nothing_and_can_be_retried(api, body, product):
    Product.objects.filter(pk=product.pk).update(stock=0)
    assert post(api, body, "retry-me").status_code == 409
    Product.objects.filter(pk=product.pk).update(stock=5)
    assert post(api, body, "retry-me").status_code == 201


def test_an_overlong_key_is_a_field_error(api, body):
    response = post(api, body, "k" * 256)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["fields"]


def test_the_record_is_stored_in_the_database(api, body, organization):
    post(api, body, "stored")
    record = IdempotencyRecord.objects.get(organization=organization, key="stored")
    assert record.status_code == 201
    assert record.response_body["number"] == "ORD-000001"
