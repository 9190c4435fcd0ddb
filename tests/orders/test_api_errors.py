"""Every client mistake is a 4xx in the one error shape, never a 500."""

import io
import json

import pytest
from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError
from django.test import RequestFactory, override_settings

from apps.api.errors import bad_request, exception_handler, server_error
from apps.api.parsers import MAX_JSON_NESTING
from apps.orders.api.views import CustomerViewSet

pytestmark = [pytest.mark.django_db, pytest.mark.no_nplusone]


def assert_error_shape(response, status_code, code=None):
    assert response.status_code == status_code, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert {"code", "message", "fields"} <= set(body["error"])
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]


def test_malformed_json_is_a_400(api):
    response = api.post("/api/v1/products/", "{not json", content_type="application/json")
    assert_error_shape(response, 400, "parse_error")


def test_a_lone_surrogate_in_json_is_a_400(api):
    body = '{"sku": "\\ud800", "name": "x", "price": "1.00"}'
    response = api.post("/api/v1/products/", body, content_type="application/json")
    assert_error_shape(response, 400, "parse_error")


def test_field_errors_name_the_fields(api):
    response = api.post("/api/v1/products/", {"name": "No sku"}, format="json")
    error = assert_error_shape(response, 400, "validation_error")
    assert set(error["fields"]) == {"sku", "price"}


def test_a_json_array_instead_of_an_object_is_a_400(api):
    response = api.post("/api/v1/customers/", "[]", content_type="application/json")
    assert_error_shape(response, 400, "validation_error")


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2048)
def test_a_body_over_the_limit_is_a_413(api):
    body = json.dumps({"sku": "BIG", "name": "x" * 5000, "price": "1.00"})
    response = api.post("/api/v1/products/", body, content_type="application/json")
    assert_error_shape(response, 413, "payload_too_large")


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2048)
def test_a_body_over_the_limit_read_by_django_is_a_json_413(client):
    # CSRF middleware reads the form body of the admin login before any view runs.
    response = client.post("/admin/login/", {"username": "x" * 5000, "password": "y"})
    assert_error_shape(response, 413, "payload_too_large")


def test_request_data_too_big_inside_a_view_is_a_413():
    response = exception_handler(RequestDataTooBig(), {})
    assert response.status_code == 413
    assert response.data["error"]["code"] == "payload_too_large"


def test_the_400_handler_answers_json_under_api():
    request = RequestFactory().get("/api/v1/orders/")
    assert bad_request(request, Exception()).status_code == 400


def test_unknown_api_urls_are_a_json_404(api):
    error = assert_error_shape(api.get("/api/v1/no-such-thing/"), 404, "not_found")
    assert "/api/v1/no-such-thing/" in error["message"]


def test_unknown_api_urls_are_a_json_404_without_a_key(client):
    assert_error_shape(client.get("/api/nothing"), 404, "not_found")


def test_a_missing_object_is_a_json_404(api):
    assert_error_shape(api.get("/api/v1/products/123456/"), 404, "not_found")


def test_a_non_numeric_id_is_a_json_404(api):
    assert_error_shape(api.get("/api/v1/products/abc/"), 404, "not_found")


def test_a_huge_id_is_a_json_404(api):
    assert_error_shape(api.get("/api/v1/orders/99999999999999999999999/"), 404, "not_found")


def test_a_wrong_method_is_a_json_405(api):
    assert_error_shape(api.put("/api/v1/orders/", {}, format="json"), 405, "method_not_allowed")


def test_a_non_json_body_is_a_415(api):
    response = api.post("/api/v1/customers/", "email=a", content_type="text/plain")
    assert_error_shape(response, 415, "unsupported_media_type")


def test_asking_for_html_is_a_406(api):
    assert_error_shape(api.get("/api/v1/customers/", HTTP_ACCEPT="text/html"), 406)


@pytest.mark.parametrize(
    "query",
    ["page_size=abc", "min_price=cheap", "customer=-1", "customer=1.5", "created_after=yesterday"],
)
def test_malformed_filters_are_a_4xx(api, query):
    path = "/api/v1/orders/" if "customer" in query or "created" in query else "/api/v1/products/"
    response = api.get(f"{path}?{query}")
    assert 200 <= response.status_code < 500


def test_a_nul_character_in_search_is_a_400(api):
    assert_error_shape(api.get("/api/v1/products/?search=a%00b"), 400, "validation_error")


def test_a_nul_character_in_a_field_is_a_400(api):
    response = api.post(
        "/api/v1/customers/", {"email": "a@example.com", "name": "a\x00b"}, format="json"
    )
    assert_error_shape(response, 400, "validation_error")


def test_a_huge_quantity_is_a_400(api, customer, product):
    body = {"customer": customer.pk, "lines": [{"product": product.pk, "quantity": 10**30}]}
    assert_error_shape(api.post("/api/v1/orders/", body, format="json"), 400)


@pytest.mark.parametrize("path", ["/api/v1/orders/", "/api/v1/products/123456/"])
def test_api_answers_and_errors_are_not_cached(api, path):
    assert api.get(path)["Cache-Control"] == "no-store"


def test_json_404_is_not_cached(api):
    assert api.get("/api/v1/nope/")["Cache-Control"] == "no-store"


def test_writing_to_an_unknown_api_url_is_a_json_404_not_a_csrf_403(api):
    assert_error_shape(api.put("/api/v1/customers/abc/", {}, format="json"), 404, "not_found")


def test_an_extreme_time_zone_offset_in_a_date_filter_is_accepted(api):
    response = api.get("/api/v1/orders/", {"created_after": "7793-11-06T08:14:35+20:34"})
    assert response.status_code == 200


def test_a_date_filter_out_of_range_is_a_400(api):
    response = api.get("/api/v1/orders/", {"created_before": "0001-01-01T00:00:00+20:00"})
    assert_error_shape(response, 400, "validation_error")


def test_a_cursor_with_an_impossible_time_is_a_400(api):
    import base64

    cursor = base64.b64encode(b"p=0001-01-01T00:00:00+23:00").decode()
    response = api.get("/api/v1/orders/", {"cursor": cursor})
    assert_error_shape(response, 400, "validation_error")


def test_an_api_url_with_a_newline_is_a_json_404(api):
    assert_error_shape(api.get("/api/v1/customers/a%0Ab/"), 404, "not_found")


# --- Nothing a client sends turns into a 500 ------------------------------------------------------


def customer_named(name_json):
    return '{"email": "deep@example.com", "name": ' + name_json + "}"


@pytest.mark.parametrize("depth", [MAX_JSON_NESTING, 950, 100_000])
def test_json_nested_deeper_than_the_limit_is_a_400(api, depth):
    # The customer object is the first level.
    body = customer_named("[" * depth + "]" * depth)

    response = api.post("/api/v1/customers/", body, content_type="application/json")

    error = assert_error_shape(response, 400, "parse_error")
    assert "nested" in error["message"]


def test_json_nested_up_to_the_limit_is_parsed(api):
    body = customer_named("[" * (MAX_JSON_NESTING - 1) + "]" * (MAX_JSON_NESTING - 1))

    response = api.post("/api/v1/customers/", body, content_type="application/json")

    # The body was read: the serializer, not the parser, refuses a list as a name.
    error = assert_error_shape(response, 400, "validation_error")
    assert set(error["fields"]) == {"name"}


@pytest.fixture
def customer_list_raising(monkeypatch):
    """The customer list fails with `exception` (a bug, or the database going away)."""

    def raise_it(exception):
        def failing_list(self, request, *args, **kwargs):
            raise exception

        monkeypatch.setattr(CustomerViewSet, "list", failing_list)

    return raise_it


@pytest.fixture
def api_answering_errors(api):
    """The API client receiving the server's error response instead of the exception."""
    api.raise_request_exception = False
    return api


def test_an_unhandled_exception_under_api_is_a_json_500_never_stored(
    api_answering_errors, customer_list_raising
):
    customer_list_raising(RuntimeError("secret detail of a bug"))

    response = api_answering_errors.get("/api/v1/customers/")

    assert_error_shape(response, 500, "server_error")
    assert response["Cache-Control"] == "no-store"
    assert b"secret detail" not in response.content


def test_a_database_outage_under_api_is_a_json_503_to_retry(
    api_answering_errors, customer_list_raising
):
    customer_list_raising(OperationalError("connection to server failed: Connection refused"))

    response = api_answering_errors.get("/api/v1/customers/")

    assert_error_shape(response, 503, "database_unavailable")
    assert response["Cache-Control"] == "no-store"
    assert int(response["Retry-After"]) > 0
    assert b"Connection refused" not in response.content


def test_an_unhandled_exception_outside_api_keeps_djangos_page():
    response = server_error(RequestFactory().get("/admin/"))

    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


def test_a_chunked_body_without_content_length_is_read(api):
    # What gunicorn hands over for `Transfer-Encoding: chunked`: the decoded body on an input
    # that ends with it, and no CONTENT_LENGTH.
    body = json.dumps({"email": "chunked@example.com", "name": "Chunked"}).encode()

    response = api.generic(
        "POST",
        "/api/v1/customers/",
        content_type="application/json",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True},
    )

    assert response.status_code == 201, response.content
    assert response.json()["email"] == "chunked@example.com"


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2048)
def test_a_chunked_body_over_the_limit_is_a_413(api):
    body = json.dumps({"email": "big@example.com", "name": "x" * 5000}).encode()

    response = api.generic(
        "POST",
        "/api/v1/customers/",
        content_type="application/json",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True},
    )

    assert_error_shape(response, 413, "payload_too_large")


def test_a_database_outage_outside_api_is_a_plain_503_page_to_retry(client):
    request = RequestFactory().get("/admin/")
    try:
        raise OperationalError("connection to server failed: Connection refused")
    except OperationalError:
        response = server_error(request)

    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert int(response["Retry-After"]) > 0
    assert b"Connection refused" not in response.content
