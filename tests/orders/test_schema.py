"""The OpenAPI schema documents every answer, and fuzzing finds no 5xx nor off-schema answer."""

import re

import pytest
from django.core import signals
from django.db import close_old_connections, connection

from apps.orders import services
from project.wsgi import application
from tests.orders.factories import make_api_key, make_customer, make_product

pytestmark = [pytest.mark.django_db, pytest.mark.no_nplusone]

MAX_EXAMPLES = 20


@pytest.fixture
def schema_document(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def test_schema_is_served_without_a_key(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"openapi: 3" in response.content


def test_swagger_ui_is_served_from_local_static_files(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    external = [url for url in re.findall(r'(?:src|href)="([^"]+)"', page) if "//" in url]
    assert external == []


def test_schema_uses_bearer_authentication(schema_document):
    schemes = schema_document["components"]["securitySchemes"]
    assert schemes["BearerAPIKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["BearerAPIKey"]["description"],
    }


def test_every_operation_documents_its_error_statuses(schema_document):
    expected = {
        ("/api/v1/orders/", "post"): {"201", "400", "401", "409", "413", "422", "429"},
        ("/api/v1/orders/{id}/", "get"): {"200", "401", "404", "429"},
        ("/api/v1/orders/{id}/pay/", "post"): {"200", "401", "404", "409", "429"},
        ("/api/v1/orders/{id}/ship/", "post"): {"200", "404", "409"},
        ("/api/v1/orders/{id}/cancel/", "post"): {"200", "404", "409"},
        ("/api/v1/products/{id}/", "delete"): {"204", "404", "409"},
        ("/api/v1/customers/{id}/", "delete"): {"204", "404", "409"},
        ("/api/v1/reports/sales/", "get"): {"200", "400", "401", "429"},
        ("/api/v1/reports/top-products/", "get"): {"200", "400", "401", "429"},
    }
    for (path, method), statuses in expected.items():
        documented = set(schema_document["paths"][path][method]["responses"])
        assert statuses <= documented, (path, method, statuses - documented)


def test_errors_are_documented_with_the_error_shape(schema_document):
    error = schema_document["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    detail = schema_document["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"code", "message", "fields"}


@pytest.fixture
def connections_kept_open():
    """Like Django's test client: the WSGI app must not close the test's connection (which would
    end its transaction on PostgreSQL) when a request starts or finishes."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


# The generated cases are the same on every run (derandomized); PostgreSQL is the stricter of the
# two databases (NUL bytes, integer ranges), so fuzzing twice on SQLite would find nothing more.
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="runs in the PostgreSQL pass (DATABASE_URL set)"
)
@pytest.mark.long_running
@pytest.mark.usefixtures("connections_kept_open")
@pytest.mark.allow_nplusone(reason="hundreds of requests in one body, each querying alike")
@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_fuzzing_every_operation_finds_no_server_error_nor_off_schema_answer(organization, mode):
    """schemathesis against the WSGI app, in-process: MAX_EXAMPLES cases per operation, valid
    (positive) or deliberately invalid (negative) ones."""
    # Imported here, not at the top: schemathesis and hypothesis take a second and a half of CPU
    # to import, and every pytest process collects this module (schemathesis' own pytest plugin
    # is off, pyproject.toml).
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    generation_mode = schemathesis.GenerationMode(mode)
    _, key = make_api_key(organization)
    # Real rows so that generated requests also reach existing data, and the order operations
    # get an existing order (its transitions answer 200 or 409).
    customers = [make_customer(organization) for _ in range(3)]
    products = [make_product(organization, stock=10_000) for _ in range(3)]
    order = services.create_order(
        organization, customers[0], [{"product": products[0], "quantity": 1}]
    )
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    headers = {"Authorization": f"Bearer {key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:
        path_parameters = (
            {"id": order.pk} if operation.path.startswith("/api/v1/orders/{id}") else None
        )

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode, path_parameters=path_parameters))
        def run(case):
            case.headers = {**(case.headers or {}), **headers}
            response = case.call()
            case.validate_response(response, checks=checks)

        run()
