"""What a silk recording stores, and what it costs: how often it masks and writes its rows."""

import json

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from silk import model_factory
from silk.collector import DataCollector
from silk.models import Request, Response, SQLQuery

from apps.profiling import silk as profiling_silk
from apps.profiling.silk_middleware import ResponseModelFactory
from tests.orders.factories import make_api_key, make_customer, make_organization

pytestmark = pytest.mark.django_db

CUSTOMERS = "/api/v1/customers/"


@pytest.fixture
def api(settings):
    settings.SILK_SAMPLE_PERCENT = 100.0
    organization = make_organization()
    for _ in range(3):
        make_customer(organization)
    _, key = make_api_key(organization)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def recording():
    """A request silk is recording: what its response factory reads from the collector."""
    DataCollector().configure(Request(path="/recorded/", method="GET"), should_profile=False)
    yield
    DataCollector().clear()


def json_response(content):
    return HttpResponse(content, content_type="application/json")


def silks_own_body(response):
    return model_factory.ResponseModelFactory(response).body()


def test_a_recorded_json_response_is_shown_with_sorted_keys_indented_by_two(api):
    response = api.get(CUSTOMERS)
    assert response.status_code == 200

    stored = Response.objects.get(request__path=CUSTOMERS)

    document = json.loads(response.content)
    assert stored.body == json.dumps(document, sort_keys=True, indent=2)


def test_a_json_body_with_an_integer_beyond_64_bits_keeps_it_exact(recording):
    body, _ = ResponseModelFactory(json_response(b'{"n": 123456789012345678901234567890}')).body()

    assert json.loads(body) == {"n": 123456789012345678901234567890}


@pytest.mark.parametrize(
    "content",
    ['{"name": "Zoë"}'.encode(), b'{"ratio": NaN}', b"not json"],
    ids=["non-ascii", "nan", "invalid"],
)
def test_a_body_orjson_would_not_render_as_silk_does_is_left_to_silk(content, recording):
    response = json_response(content)

    assert ResponseModelFactory(response).body() == silks_own_body(response)


def test_a_body_over_the_size_limit_is_not_shown(recording):
    response = json_response(b'{"rows": [' + b"1," * 20_000 + b"1]}")

    body, _ = ResponseModelFactory(response).body()

    assert body == ""


@pytest.fixture
def masking_calls(monkeypatch):
    """Field name -> how many times the project's masking ran on it (silk's Request rows)."""
    calls = {}
    for name, mask in profiling_silk._REQUEST_MASKERS.items():

        def counted(value, name=name, mask=mask):
            calls[name] = calls.get(name, 0) + 1
            return mask(value)

        monkeypatch.setitem(profiling_silk._REQUEST_MASKERS, name, counted)
    return calls


def test_each_text_of_a_recorded_request_is_masked_once_however_often_silk_saves_it(
    masking_calls,
):
    recorded = Request(path=CUSTOMERS, method="GET", body="", encoded_headers="{}")
    recorded.save()

    # silk's own way of writing a recording: the row saved again to count each query, then whole.
    for _ in range(2):
        recorded.num_sql_queries += 1
        recorded.save(update_fields=["num_sql_queries"])
    recorded.save()

    assert masking_calls == dict.fromkeys(profiling_silk._REQUEST_MASKERS, 1)


def test_a_text_silk_changes_after_a_save_is_masked_at_the_next(api):
    api.get(CUSTOMERS)
    recorded = Request.objects.get(path=CUSTOMERS)

    recorded.body = "Authorization: Bearer abcdefgh12345678"
    recorded.save()

    recorded.refresh_from_db()
    assert "abcdefgh12345678" not in recorded.body


def silk_request_writes(statements):
    return [
        statement.split()[0]
        for statement in statements
        if statement.startswith(("INSERT", "UPDATE")) and '"silk_request"' in statement
    ]


def test_a_recording_writes_silks_request_row_with_one_insert(api):
    with CaptureQueriesContext(connection) as captured:
        api.get(CUSTOMERS)

    statements = [query["sql"] for query in captured.captured_queries]
    assert silk_request_writes(statements) == ["INSERT"]


def test_a_recorded_request_counts_the_queries_recorded_with_it(api):
    api.get(CUSTOMERS)

    recorded = Request.objects.get(path=CUSTOMERS)
    assert recorded.num_sql_queries == SQLQuery.objects.filter(request=recorded).count() >= 2
    assert Response.objects.get(request=recorded).status_code == 200


def test_nothing_is_left_in_silks_collector_after_a_recording(api):
    api.get(CUSTOMERS)

    assert DataCollector().request is None
    assert DataCollector().queries == {}
