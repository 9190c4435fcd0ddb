"""silk's own work while it records a request is not the request's.

silk writes its rows (silk_request, silk_response, silk_sqlquery) and explains each query through
the request's own connection: none of that may show in the request's query count, database time,
heaviest queries, telemetry, slow-request rows or duration.
"""

import time
import traceback

import pytest
import silk.sql
from django.test import Client
from silk.collector import DataCollector
from silk.model_factory import RequestModelFactory
from silk.models import Request

from apps.observability.telemetry import aggregation as telemetry
from apps.observability.telemetry import rows as telemetry_rows
from apps.orders.services import create_order
from tests.observability.logging_capture import access_lines, captured_console, json_lines
from tests.orders.factories import make_api_key, make_customer, make_organization, make_product

pytestmark = pytest.mark.django_db

ORDER_ROUTE = "/api/v1/orders/<pk>/"
QUERY_COUNT = telemetry_rows.COUNTER_FIELDS.index("query_count")
SLOW = telemetry_rows.COUNTER_FIELDS.index("slow")
# Well above what reading one order takes, and below what silk is made to spend around it.
SLOW_REQUEST_MS = 300
SILK_DELAY_SECONDS = 0.4


@pytest.fixture(autouse=True)
def empty_telemetry_buffer():
    telemetry.aggregator.take()
    yield
    telemetry.aggregator.take()


@pytest.fixture
def organization():
    return make_organization()


@pytest.fixture
def order_url(organization):
    products = [make_product(organization) for _ in range(3)]
    order = create_order(
        organization,
        make_customer(organization),
        [{"product": product, "quantity": 1} for product in products],
    )
    return f"/api/v1/orders/{order.pk}/"


@pytest.fixture
def api(organization, order_url):
    _, key = make_api_key(organization)
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {key}")
    # The key's first use is written once: later requests run the same queries.
    assert client.get(order_url).status_code == 200
    telemetry.aggregator.take()
    return client


def served(api, url, settings, *, recorded):
    """(access line, telemetry row, slow-request samples) of one GET, recorded by silk or not."""
    settings.SILK_SAMPLE_PERCENT = 100.0 if recorded else 0.0
    silk_rows_before = Request.objects.count()
    with captured_console() as console:
        response = api.get(url)
    assert response.status_code == 200, response.content
    assert Request.objects.count() == silk_rows_before + int(recorded)
    (line,) = access_lines(json_lines(console.getvalue()))
    batch = telemetry.aggregator.take()
    (row,) = [values for (_, route, _), values in batch.rows.items() if route == ORDER_ROUTE]
    samples = [sample for (_, route), kept in batch.slow_requests.items() for sample in kept]
    return line, row, samples


def test_a_recorded_request_logs_the_query_count_of_an_unrecorded_one(api, order_url, settings):
    unrecorded, _, _ = served(api, order_url, settings, recorded=False)
    recorded, _, _ = served(api, order_url, settings, recorded=True)

    assert recorded["query_count"] == unrecorded["query_count"]


def test_a_recorded_request_counts_in_telemetry_the_queries_of_an_unrecorded_one(
    api, order_url, settings
):
    _, unrecorded, _ = served(api, order_url, settings, recorded=False)
    _, recorded, _ = served(api, order_url, settings, recorded=True)

    assert recorded[QUERY_COUNT] == unrecorded[QUERY_COUNT]


def test_a_recorded_slow_request_row_counts_the_queries_of_an_unrecorded_one(
    api, order_url, settings
):
    settings.LOG_SLOW_REQUEST_MS = 0
    _, _, (unrecorded,) = served(api, order_url, settings, recorded=False)
    _, _, (recorded,) = served(api, order_url, settings, recorded=True)

    assert recorded.query_count == unrecorded.query_count


def test_silk_tables_are_never_among_the_heaviest_queries_of_a_request(api, order_url, settings):
    settings.LOG_SLOW_REQUEST_MS = 0
    line, _, _ = served(api, order_url, settings, recorded=True)

    fingerprints = [query["fingerprint"] for query in line["top_queries"]]
    assert fingerprints
    assert not [fingerprint for fingerprint in fingerprints if "silk_" in fingerprint]


def sleep_then(function):
    def delayed(*args, **kwargs):
        time.sleep(SILK_DELAY_SECONDS)
        return function(*args, **kwargs)

    return delayed


def sleep_once_then(function):
    slept = []

    def delayed(*args, **kwargs):
        if not slept:
            slept.append(True)
            time.sleep(SILK_DELAY_SECONDS)
        return function(*args, **kwargs)

    return delayed


@pytest.mark.parametrize(
    ("owner", "name", "delay"),
    [
        pytest.param(RequestModelFactory, "construct_request_model", sleep_then, id="before"),
        pytest.param(silk.sql, "_explain_query", sleep_once_then, id="around-a-query"),
        pytest.param(DataCollector, "finalise", sleep_then, id="after"),
    ],
)
def test_time_silk_spends_recording_does_not_make_a_request_slow(
    api, order_url, settings, monkeypatch, owner, name, delay
):
    settings.LOG_SLOW_REQUEST_MS = SLOW_REQUEST_MS
    monkeypatch.setattr(owner, name, delay(getattr(owner, name)))

    line, row, samples = served(api, order_url, settings, recorded=True)

    assert "slow" not in line
    assert row[SLOW] == 0
    assert samples == []


def test_the_access_line_of_a_recorded_request_says_what_the_recording_cost(
    api, order_url, settings
):
    unrecorded, _, _ = served(api, order_url, settings, recorded=False)
    recorded, _, _ = served(api, order_url, settings, recorded=True)

    assert "profiler_queries" not in unrecorded
    assert "profiler_ms" not in unrecorded
    assert recorded["profiler_queries"] > 0
    assert recorded["profiler_ms"] > 0


def test_silk_formats_a_stack_for_the_requests_queries_only(api, order_url, settings, monkeypatch):
    unrecorded, _, _ = served(api, order_url, settings, recorded=False)
    formatted = []
    format_stack = traceback.format_stack

    def counted(*args, **kwargs):
        formatted.append(1)
        return format_stack(*args, **kwargs)

    monkeypatch.setattr(traceback, "format_stack", counted)

    served(api, order_url, settings, recorded=True)

    assert len(formatted) == unrecorded["query_count"]
