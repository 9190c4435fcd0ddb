"""Sentry: initialised only with a DSN, never sent a secret, events tied to the request id, no
traces of probe, metrics, static, silk or stats traffic.

In-process tests capture envelopes with a local transport (no network); the client is removed
again after each test.
"""

import json
from wsgiref.util import setup_testing_defaults

import pytest
import sentry_sdk
from django.core.handlers.wsgi import WSGIHandler
from django.test import Client
from sentry_sdk.transport import Transport

from apps.common.redaction import REDACTED
from apps.observability.logging.sentry import (
    before_send_transaction,
    init_sentry,
    traces_sampler_for,
)
from tests.observability import canaries
from tests.observability.test_logging import send_every_canary
from tests.processes import production_environment, run_python

pytestmark = pytest.mark.urls("tests.observability.urls_for_logging")
LOCAL_DSN = "http://public@127.0.0.1:1/1"


class CapturingTransport(Transport):
    """Keeps every envelope the client would send."""

    def __init__(self):
        super().__init__()
        self.envelopes = []

    def capture_envelope(self, envelope):
        self.envelopes.append(envelope)

    def payloads(self, item_type):
        return [
            item.payload.json
            for envelope in self.envelopes
            for item in envelope.items
            if item.type == item_type
        ]

    def text(self):
        return "\n".join(
            item.payload.get_bytes().decode("utf-8", "replace")
            for envelope in self.envelopes
            for item in envelope.items
        )


@pytest.fixture
def sentry_transport():
    transport = CapturingTransport()
    init_sentry(
        dsn=LOCAL_DSN,
        environment="test",
        release="test-release",
        traces_sample_rate=1.0,
        transport=transport,
    )
    yield transport
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)
    sentry_sdk.get_isolation_scope().clear()
    sentry_sdk.get_current_scope().clear()


def fail_once():
    response = Client(raise_request_exception=False).post(
        "/logging-test/boom/", data={}, content_type="application/json"
    )
    assert response.status_code == 500
    return response


def wsgi_get(path, query=""):
    """A request through the WSGI handler, where Sentry's integration starts transactions."""
    environ = {"PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured.update(status=status, headers=dict(headers))

    body = WSGIHandler()(environ, start_response)
    b"".join(body)
    body.close()  # the transaction finishes when the response is closed
    return captured


def settings_environment(**variables):
    return production_environment(DJANGO_SETTINGS_MODULE="project.settings", **variables)


NO_DSN = """
import django, sentry_sdk
from sentry_sdk.integrations import _installed_integrations
django.setup()
print(sentry_sdk.get_client().is_active(), sorted(_installed_integrations))
"""


@pytest.mark.system
def test_no_sentry_client_exists_without_a_dsn():
    result = run_python(NO_DSN, settings_environment(SENTRY_DSN=None))

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "[]"]


WITH_DSN = """
import json, django, sentry_sdk
from sentry_sdk.integrations.django import DjangoIntegration
django.setup()
client = sentry_sdk.get_client()
django_integration = client.get_integration(DjangoIntegration)
sampler = client.options["traces_sampler"]
print(json.dumps({
    "active": client.is_active(),
    "environment": client.options["environment"],
    "release": client.options["release"],
    "send_default_pii": client.options["send_default_pii"],
    "max_request_body_size": client.options["max_request_body_size"],
    "spans": [django_integration.middleware_spans, django_integration.signals_spans,
              django_integration.cache_spans],
    "api_rate": sampler({"wsgi_environ": {"PATH_INFO": "/api/v1/orders/"}}),
    "probe_rate": sampler({"wsgi_environ": {"PATH_INFO": "/ready"}}),
}))
"""


@pytest.mark.system
def test_sentry_is_configured_from_the_environment_when_a_dsn_is_set():
    environment = settings_environment(
        SENTRY_DSN=LOCAL_DSN,
        SENTRY_TRACES_SAMPLE_RATE="0.25",
        SENTRY_RELEASE="release-42",
        SENTRY_ENVIRONMENT=None,
    )
    result = run_python(WITH_DSN, environment)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "active": True,
        "environment": "production",
        "release": "release-42",
        "send_default_pii": False,
        "max_request_body_size": "never",
        "spans": [False, False, False],
        "api_rate": 0.25,
        "probe_rate": 0.0,
    }


@pytest.mark.system
def test_a_bad_sample_rate_stops_start_up_naming_the_variable():
    result = run_python(
        "import django; django.setup()",
        settings_environment(SENTRY_DSN=LOCAL_DSN, SENTRY_TRACES_SAMPLE_RATE="1.5"),
    )

    assert result.returncode != 0
    assert "SENTRY_TRACES_SAMPLE_RATE" in result.stderr


def test_unhandled_exception_is_reported_with_the_request_id_and_route(sentry_transport):
    response = fail_once()

    (event,) = sentry_transport.payloads("event")
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert event["tags"]["request_id"] == response.headers["X-Request-ID"]
    assert event["tags"]["route"] == "/logging-test/boom/"
    assert (event["environment"], event["release"]) == ("test", "test-release")


def test_the_error_access_line_is_not_a_second_event(sentry_transport):
    fail_once()

    events = sentry_transport.payloads("event")
    assert len(events) == 1
    assert "exception" in events[0]


@pytest.mark.django_db
def test_canaries_never_reach_sentry(sentry_transport):
    send_every_canary(Client(raise_request_exception=False))

    assert sentry_transport.payloads("event"), "the failing request should be reported"
    assert canaries.found_in(sentry_transport.text()) == []


def test_request_bodies_are_not_sent(sentry_transport):
    fail_once()

    (event,) = sentry_transport.payloads("event")
    assert event["request"].get("data", "") == ""


@pytest.mark.django_db
def test_transactions_carry_the_request_id_and_no_secrets(sentry_transport):
    response = wsgi_get("/logging-test/items/3/", query=f"token={canaries.QUERY_TOKEN}")

    (transaction,) = sentry_transport.payloads("transaction")
    assert transaction["tags"]["request_id"] == response["headers"]["X-Request-ID"]
    assert transaction["tags"]["route"] == "/logging-test/items/<int:pk>/"
    assert canaries.QUERY_TOKEN not in sentry_transport.text()


@pytest.mark.django_db
def test_probe_requests_are_not_traced(sentry_transport):
    wsgi_get("/health")

    assert sentry_transport.payloads("transaction") == []


@pytest.mark.parametrize(
    "path",
    ["/health", "/ready", "/health-detailed", "/metrics", "/stats", "/static/a.css", "/silk/"],
)
def test_probe_metrics_stats_static_and_silk_traffic_is_never_sampled(path):
    sampler = traces_sampler_for(1.0)

    assert sampler({"wsgi_environ": {"PATH_INFO": path}}) == 0.0
    assert sampler({"asgi_scope": {"path": path}}) == 0.0


def test_other_traffic_is_sampled_at_the_configured_rate():
    sampler = traces_sampler_for(0.3)

    assert sampler({"wsgi_environ": {"PATH_INFO": "/api/v1/orders/"}}) == 0.3
    assert sampler({"asgi_scope": {"path": "/admin/"}}) == 0.3


def test_a_client_cannot_switch_tracing_on():
    sampler = traces_sampler_for(0.0)

    context = {"wsgi_environ": {"PATH_INFO": "/api/v1/orders/"}, "parent_sampled": True}
    assert sampler(context) == 0.0


def test_transaction_events_are_redacted():
    transaction = {
        "type": "transaction",
        "request": {"query_string": "page=2&api_key=abc", "headers": {"X-Api-Key": "abc"}},
        "spans": [{"description": "GET https://user:pw@upstream/x", "data": {}}],
    }

    redacted = before_send_transaction(transaction, {})

    assert redacted["request"] == {
        "query_string": f"page=2&api_key={REDACTED}",
        "headers": {"X-Api-Key": REDACTED},
    }
    assert redacted["spans"][0]["description"] == f"GET https://user:{REDACTED}@upstream/x"


def test_sentry_scrubber_denies_more_than_its_defaults(sentry_transport):
    denylist = sentry_sdk.get_client().options["event_scrubber"].denylist

    assert {"authorization", "x-api-key", "dsn", "database_url", "cookie"} <= set(denylist)
