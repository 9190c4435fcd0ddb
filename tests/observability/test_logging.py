"""Structured logs: JSON lines with the request context, one access line per request, redaction
on every destination (console, file)."""

import datetime
import io
import json
import logging
import logging.handlers
import re
import string

import pytest
import structlog
from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import JsonResponse
from django.test import Client, RequestFactory
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from apps.common import request_context
from apps.common.redaction import redact_text
from apps.observability.logging import formatting
from apps.observability.logging import middleware as request_logging
from apps.observability.logging.formatting import emit, json_dumps, structured_formatter
from apps.observability.logging.middleware import RequestContextMiddleware
from apps.tenants.models import Organization, OrganizationAPIKey
from tests.observability import canaries
from tests.observability.logging_capture import (
    ACCESS_LOGGER,
    access_lines,
    captured_console,
    json_lines,
    plain_stream_logger,
)
from tests.processes import project_environment, run_python

pytestmark = pytest.mark.urls("tests.observability.urls_for_logging")


@pytest.fixture
def client():
    # A 500 must be answered (and logged) as in production, not re-raised into the test.
    return Client(raise_request_exception=False)


def get_lines(client, path, **kwargs):
    with captured_console() as console:
        response = client.get(path, **kwargs)
    return response, json_lines(console.getvalue())


def only_access_line(lines):
    found = access_lines(lines)
    assert len(found) == 1, lines
    return found[0]


def test_every_line_of_a_request_is_json_and_carries_the_echoed_request_id(client):
    response, lines = get_lines(client, "/logging-test/items/7/")

    request_id = response.headers["X-Request-ID"]
    assert {line["event"] for line in lines} >= {
        "stdlib line for item 7",
        "structlog line",
        "request",
    }
    assert {line.get("request_id") for line in lines} == {request_id}


def test_access_line_describes_the_request(client):
    response, lines = get_lines(client, "/logging-test/items/7/?page=2")

    line = only_access_line(lines)
    assert line["level"] == "info"
    assert line["method"] == "GET"
    assert line["route"] == "/logging-test/items/<int:pk>/"
    assert line["path"] == "/logging-test/items/7/"
    assert line["status"] == 200
    assert line["response_bytes"] == len(response.content)
    assert line["duration_ms"] >= 0
    assert (line["query_count"], line["db_time_ms"]) == (0, 0)
    assert isinstance(line["pid"], int)
    assert line["timestamp"].endswith("Z")


@pytest.mark.django_db
def test_access_line_counts_the_queries_of_the_request(client):
    _, lines = get_lines(client, "/logging-test/slow/?sleep=0")

    line = only_access_line(lines)
    assert line["query_count"] == 4
    assert line["db_time_ms"] > 0


@pytest.mark.django_db
def test_api_request_lines_carry_the_organization_of_the_key(client):
    organization = Organization.objects.create(name="Acme", slug="acme")
    _, key = OrganizationAPIKey.objects.create_key(name="ci", organization=organization)

    _, lines = get_lines(client, "/api/v1/orders/", HTTP_AUTHORIZATION=f"Bearer {key}")

    line = only_access_line(lines)
    assert line["status"] == 200
    assert line["organization_id"] == organization.pk
    assert "user_id" not in line


@pytest.mark.django_db
def test_staff_request_lines_carry_the_user_id(client):
    staff = get_user_model().objects.create_user("ops", password="x", is_staff=True)
    client.force_login(staff)

    _, lines = get_lines(client, "/admin/")

    assert only_access_line(lines)["user_id"] == staff.pk


@pytest.mark.django_db
def test_slow_request_is_a_warning_with_its_heaviest_query_fingerprints(client, settings):
    settings.LOG_SLOW_REQUEST_MS = 20

    _, lines = get_lines(client, "/logging-test/slow/?sleep=0.05")

    line = only_access_line(lines)
    assert line["level"] == "warning"
    assert line["slow"] is True
    fingerprints = {query["fingerprint"]: query["count"] for query in line["top_queries"]}
    # The one SQL normaliser of apps/common/sql.py, as the query findings use it.
    assert fingerprints == {"SELECT %s, %s": 3, "SELECT %s WHERE %s IN (...)": 1}


@pytest.mark.django_db
def test_query_parameters_are_never_logged(client, settings):
    settings.LOG_SLOW_REQUEST_MS = 1

    with captured_console() as console:
        client.get("/logging-test/slow/?sleep=0.01")

    assert canaries.QUERY_PARAMETER not in console.getvalue()


def test_fast_request_has_no_query_summary(client):
    _, lines = get_lines(client, "/logging-test/items/1/")

    line = only_access_line(lines)
    assert "slow" not in line
    assert "top_queries" not in line


def test_server_error_is_one_error_line_with_the_traceback(client):
    with captured_console() as console:
        response = client.post("/logging-test/boom/", data={}, content_type="application/json")
    lines = json_lines(console.getvalue())

    assert response.status_code == 500
    errors = [line for line in lines if line["level"] == "error"]
    assert len(errors) == 1, lines
    assert errors[0]["logger"] == ACCESS_LOGGER
    assert errors[0]["status"] == 500
    assert errors[0]["request_id"] == response.headers["X-Request-ID"]
    assert "Traceback (most recent call last)" in errors[0]["exception"]
    assert "RuntimeError: could not connect" in errors[0]["exception"]


def test_traceback_shows_no_local_variables(client):
    # "alice" only ever lives in the view's local variable `payload`.
    with captured_console() as console:
        client.post("/logging-test/boom/", data={"name": "alice"}, content_type="application/json")

    assert "RuntimeError" in console.getvalue()
    assert "alice" not in console.getvalue()


def test_server_error_response_without_exception_is_an_error_line(client):
    _, lines = get_lines(client, "/logging-test/unavailable/")

    line = only_access_line(lines)
    assert (line["level"], line["status"]) == ("error", 503)
    assert "exception" not in line


def test_client_error_is_logged_once_by_the_access_line(client):
    _, lines = get_lines(client, "/no-such-page/")

    assert [line["logger"] for line in lines] == [ACCESS_LOGGER]
    assert lines[0]["status"] == 404
    assert "route" not in lines[0]


def test_static_files_get_no_access_line(client):
    _, lines = get_lines(client, "/static/no-such-file.css")

    assert access_lines(lines) == []


def test_probes_get_no_access_line(client):
    response, lines = get_lines(client, "/health")

    assert response.status_code == 200
    assert access_lines(lines) == []


def test_lines_outside_a_request_carry_no_request_context():
    with captured_console() as console:
        logging.getLogger("apps.logging_test").warning("between requests")

    (line,) = json_lines(console.getvalue())
    assert line["event"] == "between requests"
    assert "request_id" not in line
    assert "route" not in line


def send_every_canary(client):
    """An API call and a failing request carrying every secret a client can send."""
    query, headers, body = canaries.request_arguments()
    client.post(
        f"/api/v1/orders/{query}",
        data=json.dumps(body),
        content_type="application/json",
        headers={name: value for name, value in headers.items() if name != "Content-Type"},
    )
    query, headers, body = canaries.request_arguments(bearer=canaries.BEARER_TOKEN)
    response = client.post(
        f"/logging-test/boom/{query}",
        data=json.dumps(body),
        content_type="application/json",
        headers={name: value for name, value in headers.items() if name != "Content-Type"},
    )
    assert response.status_code == 500


@pytest.mark.django_db
def test_canaries_never_reach_the_console(client):
    with captured_console() as console:
        send_every_canary(client)

    output = console.getvalue()
    assert "RuntimeError" in output
    assert canaries.found_in(output) == []


@pytest.mark.django_db
def test_canaries_never_reach_the_log_file(client, tmp_path):
    path = tmp_path / "orders.log"
    handler = logging.handlers.WatchedFileHandler(path)
    handler.setFormatter(structured_formatter("json"))
    logging.getLogger().addHandler(handler)
    try:
        send_every_canary(client)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()

    text = path.read_text()
    assert len(access_lines(json_lines(text))) == 2
    assert canaries.found_in(text) == []


def test_foreign_exception_text_is_redacted():
    database_url = f"postgres://orders:{canaries.DATABASE_PASSWORD}@db:5432/orders"
    with captured_console() as console:
        try:
            raise ConnectionError(f"cannot reach {database_url}")
        except ConnectionError:
            logging.getLogger("apps.logging_test").exception("database down")

    (line,) = json_lines(console.getvalue())
    assert "postgres://orders:[REDACTED]@db:5432/orders" in line["exception"]
    assert canaries.DATABASE_PASSWORD not in console.getvalue()


def test_console_format_renders_tracebacks_without_local_variables():
    # structlog's console renderer would print Rich tracebacks with every local variable.
    formatter = structured_formatter("console")
    secret_local = "local-variable-value-3f9a"  # noqa: F841 - must not be shown
    try:
        raise ValueError("plain failure")
    except ValueError as error:
        record = logging.LogRecord(
            "apps.logging_test",
            logging.ERROR,
            __file__,
            1,
            "failed",
            (),
            (type(error), error, error.__traceback__),
        )
    text = formatter.format(record)

    assert "ValueError: plain failure" in text
    assert "local-variable-value-3f9a" not in text


LOG_TO_FILE = """
import logging, django
django.setup()
file_handlers = [h for h in logging.getLogger().handlers if h.get_name() == "file"]
print(type(file_handlers[0]).__name__)
logging.getLogger("apps.logging_test").warning("to file", extra={"db_password": "p4ss-in-extra"})
"""


def test_both_handlers_get_the_same_access_line(client, tmp_path):
    path = tmp_path / "orders.log"
    handler = logging.handlers.WatchedFileHandler(path)
    handler.setFormatter(structured_formatter("json"))
    logging.getLogger().addHandler(handler)
    try:
        _, console_lines = get_lines(client, "/logging-test/items/3/")
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()

    assert access_lines(json_lines(path.read_text())) == access_lines(console_lines)
    assert only_access_line(console_lines)["path"] == "/logging-test/items/3/"


@pytest.fixture
def access_logger_at_warning():
    logger = logging.getLogger(ACCESS_LOGGER)
    previous = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(previous)


@pytest.mark.usefixtures("access_logger_at_warning")
def test_the_access_line_follows_its_logger_level(client):
    _, fast = get_lines(client, "/logging-test/items/1/")
    _, failed = get_lines(client, "/logging-test/unavailable/")

    assert access_lines(fast) == []
    assert [line["status"] for line in access_lines(failed)] == [503]


def serve_without_closing(path, **headers):
    """What the middleware returns before a server has sent and closed the response."""
    middleware = RequestContextMiddleware(lambda request: JsonResponse({"ok": True}))
    return middleware(RequestFactory().get(path, headers=headers))


# Closing sends request_finished, which closes the database connections.
@pytest.mark.django_db
def test_the_access_line_is_written_when_the_server_closes_the_response():
    with captured_console() as console:
        response = serve_without_closing("/logging-test/items/1/", x_request_id="closing-1")
        lines_before_close = access_lines(json_lines(console.getvalue()))
        response.close()

    assert lines_before_close == []
    line = only_access_line(json_lines(console.getvalue()))
    assert (line["request_id"], line["status"], line["path"]) == (
        "closing-1",
        200,
        "/logging-test/items/1/",
    )


def test_only_middleware_that_pass_the_response_on_sit_outside_the_request_context():
    # Work attached to the response after it is sent would be lost if one of these answered
    # with a new response object (apps/observability/after_response.py).
    middleware = settings.MIDDLEWARE
    outside = middleware[
        : middleware.index(f"{RequestContextMiddleware.__module__}.RequestContextMiddleware")
    ]

    assert outside == [
        "django.middleware.security.SecurityMiddleware",
        "whitenoise.middleware.WhiteNoiseMiddleware",
        "apps.observability.health.middleware.ProbeMiddleware",
    ]


def test_the_access_line_keeps_the_context_the_view_bound_after_the_request_ends(client):
    _, lines = get_lines(client, "/logging-test/bind/")

    line = only_access_line(lines)
    assert line["leaked_from_previous_request"] is True
    assert structlog.contextvars.get_contextvars() == {}


@pytest.mark.django_db
def test_a_lost_access_line_is_logged_counted_and_the_next_line_written(monkeypatch):
    def failing_emit(logger, level, event_dict, buffer):
        raise OSError("disk full")

    failures = ("orders_after_response_failures_total", {"work": "access line"})
    failures_before = REGISTRY.get_sample_value(*failures)
    with captured_console() as console:
        with monkeypatch.context() as patch:
            patch.setattr(request_logging, "emit_redacted", failing_emit)
            serve_without_closing("/logging-test/items/1/", x_request_id="failing-1").close()
        serve_without_closing("/logging-test/items/2/").close()

    assert REGISTRY.get_sample_value(*failures) == failures_before + 1

    lines = json_lines(console.getvalue())
    (failure,) = [line for line in lines if line["event"] == "after_response_failed"]
    assert (failure["level"], failure["work"]) == ("error", "access line")
    assert failure["request_id"] == "failing-1"
    assert "disk full" in failure["exception"]
    assert only_access_line(lines)["path"] == "/logging-test/items/2/"


EVENT_WITH_A_SECRET = {"path": "/x/", "status": 200, "db_password": "p4ss-in-field", "n": [1, 2]}


def test_the_timestamp_is_the_one_structlogs_iso_utc_stamper_writes():
    stamper = structlog.processors.TimeStamper(fmt="iso", utc=True)

    before = stamper(None, "info", {})["timestamp"]
    ours = formatting.add_timestamp(None, "info", {})["timestamp"]
    after = stamper(None, "info", {})["timestamp"]

    def moment(text):
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))

    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", ours)
    assert moment(before) <= moment(ours) <= moment(after)


def test_emit_writes_the_line_a_structlog_logger_would():
    logger = logging.getLogger("apps.logging_test")
    with captured_console() as console:
        structlog.get_logger("apps.logging_test").warning("event", **EVENT_WITH_A_SECRET)
        emit(logger, logging.WARNING, {**EVENT_WITH_A_SECRET, "event": "event"})

    by_structlog, by_emit = json_lines(console.getvalue())
    assert by_structlog.pop("timestamp") <= by_emit.pop("timestamp")
    assert json.dumps(by_emit) == json.dumps(by_structlog)  # the same fields in the same order
    assert by_emit["db_password"] == "[REDACTED]"


def lines_of_emit_and_emit_redacted(fields, *, request_id="req-1", method="GET", path="/x/"):
    """The line `emit` writes and the one `emit_redacted` writes for the same fields, in a
    request context, to a plain stream handler with the project's JSON formatter (the road a
    production line takes: pytest's own handlers on the root logger would divert both to the
    record's), as (name, value) pairs in order without the timestamp."""
    request = RequestFactory().generic(method, path)
    with plain_stream_logger("apps.logging_test.emit_redacted") as (logger, stream):
        _, token = request_context.enter_request(request, request_id)
        try:
            emit(logger, logging.INFO, dict(fields))
            formatting.emit_redacted(logger, logging.INFO, dict(fields))
        finally:
            request_context.exit_request(token)
    by_emit, by_emit_redacted = json_lines(stream.getvalue())
    return (
        [item for item in by_emit.items() if item[0] != "timestamp"],
        [item for item in by_emit_redacted.items() if item[0] != "timestamp"],
    )


def test_emit_redacted_redacts_every_field_of_a_line_that_is_not_plain():
    # A sensitive name and a value that is not a number or text: the formatters redact it all.
    fields = {"path": "/x/", "db_password": "p4ss-in-field", "n": [1, 2], "event": "request"}

    by_emit, by_emit_redacted = lines_of_emit_and_emit_redacted(fields, path="/token=abc/")

    assert by_emit_redacted == by_emit
    assert dict(by_emit_redacted)["db_password"] == "[REDACTED]"


@given(
    request_id=st.from_regex(r"[A-Za-z0-9._-]{1,60}", fullmatch=True),
    method=st.text(alphabet=string.ascii_letters + "!#$%&'*+-.^_`|~=:", min_size=1, max_size=50),
    path=st.sampled_from(
        ["/x/", "/reset/token=abc/", "/k/AbCdEfGh.0123456789abcdef0123456789abcdef/"]
    ),
)
@hypothesis_settings(max_examples=60, deadline=None)
def test_emit_redacted_writes_the_line_emit_writes(request_id, method, path):
    fields = {"path": redact_text(path), "status": 200, "duration_ms": 1.5, "event": "request"}

    by_emit, by_emit_redacted = lines_of_emit_and_emit_redacted(
        fields, request_id=request_id, method=method, path=path
    )

    assert by_emit_redacted == by_emit


def test_emit_redacted_redacts_a_request_id_shaped_like_an_api_key():
    _, by_emit_redacted = lines_of_emit_and_emit_redacted(
        {"event": "request"}, request_id="AbCdEfGh.0123456789abcdef0123456789abcdef"
    )

    assert dict(by_emit_redacted)["request_id"] == "AbCdEfGh.[REDACTED]"


class ReprWithASecret:
    def __repr__(self):
        return "<Thing token=s3cr3t>"


@pytest.mark.parametrize(
    "fields",
    [
        {"event": "request", "session_count": 3},
        {"event": "request", "top_queries": [{"fingerprint": "SELECT 1 -- password=hunter2"}]},
        {"event": "request", "detail": ReprWithASecret()},
    ],
    ids=["name-redaction-hides", "text-inside-a-list", "object-rendered-as-text"],
)
def test_emit_redacted_leaves_to_emit_a_line_it_cannot_render_as_it_is(fields):
    by_emit, by_emit_redacted = lines_of_emit_and_emit_redacted(fields)

    assert by_emit_redacted == by_emit
    assert "[REDACTED]" in json.dumps(by_emit_redacted)


def test_emit_redacted_writes_what_the_view_bound_as_emit_does():
    structlog.contextvars.bind_contextvars(api_token="t0k3n-value", batch="b-7")
    try:
        by_emit, by_emit_redacted = lines_of_emit_and_emit_redacted({"event": "request"})
    finally:
        structlog.contextvars.clear_contextvars()

    assert by_emit_redacted == by_emit
    assert dict(by_emit_redacted)["api_token"] == "[REDACTED]"


def emit_to_handler_only(logger_name, handler):
    """One line emitted on `logger_name` with `handler` as its only handler."""
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        emit(logger, logging.INFO, {**EVENT_WITH_A_SECRET, "event": "event"})
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


class Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_an_emitted_line_is_rendered_as_processor_formatter_renders_it(log_format):
    records = Records()
    emit_to_handler_only("apps.logging_test.emitted", records)
    (record,) = records.records
    formatter = structured_formatter(log_format)

    text = formatter.format(record)

    assert text == structlog.stdlib.ProcessorFormatter.format(formatter, record)
    assert "p4ss-in-field" not in text
    assert formatter.format(record) == text  # rendered once, the same every time


JSON_VALUES = [
    {"event": "request", "n": 1.5, "nested": [1, None, True, {"a": "b"}], "status": 200},
    {"event": "é ✓ \u2028", "quote": 'say "hi"\n'},
    {"big": 2**70, "negative": -(2**65)},
    {1: "integer key", "object": object()},
]


@pytest.mark.parametrize("value", JSON_VALUES, ids=["ascii", "non-ascii", "big-ints", "odd-types"])
def test_json_lines_decode_to_what_json_dumps_would_write(value):
    text = json_dumps(value, default=repr)

    assert json.loads(text) == json.loads(json.dumps(value, default=repr))


@pytest.mark.parametrize("value", JSON_VALUES, ids=["ascii", "non-ascii", "big-ints", "odd-types"])
def test_json_lines_are_compact_ascii_whichever_encoder_renders_them(value):
    text = json_dumps(value, default=repr)

    assert text.isascii()
    assert text == json.dumps(json.loads(text), separators=(",", ":"))


@pytest.mark.system
def test_log_file_is_a_watched_file_of_json_lines(tmp_path):
    path = tmp_path / "orders.log"
    result = run_python(
        LOG_TO_FILE,
        project_environment(
            DJANGO_SETTINGS_MODULE="project.settings", DJANGO_ENV="development", LOG_FILE=path
        ),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "WatchedFileHandler"
    # JSON in the file even though development's console format is readable text.
    (line,) = json_lines(path.read_text())
    assert (line["event"], line["db_password"]) == ("to file", "[REDACTED]")


EFFECTIVE_LEVELS = """
import logging, django
django.setup()
for name in ("apps.observability.access", "apps.orders", "gunicorn.access"):
    print(logging.getLevelName(logging.getLogger(name).getEffectiveLevel()))
"""


def effective_levels(**variables):
    environment = project_environment(
        DJANGO_SETTINGS_MODULE="project.settings", DJANGO_ENV="test", **variables
    )
    result = run_python(EFFECTIVE_LEVELS, environment)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.system
def test_log_level_applies_to_the_project_loggers():
    assert effective_levels(LOG_LEVEL="ERROR")[:2] == ["ERROR", "ERROR"]


@pytest.mark.system
def test_gunicorn_access_lines_are_dropped_for_the_access_line():
    assert effective_levels(LOG_LEVEL="INFO") == ["INFO", "INFO", "WARNING"]


@pytest.mark.system
def test_access_level_keeps_only_slow_and_failing_requests_lines():
    assert effective_levels(LOG_ACCESS_LEVEL="WARNING")[:2] == ["WARNING", "INFO"]


@pytest.mark.system
def test_access_level_never_lets_through_what_log_level_holds_back():
    assert effective_levels(LOG_LEVEL="ERROR", LOG_ACCESS_LEVEL="WARNING")[0] == "ERROR"


def _emitted_lines(logger_name, handler):
    """What `handler` gets from one emitted line, at a fixed timestamp."""
    fixed = structlog.processors.TimeStamper(fmt="2026-01-01T00:00:00Z", utc=True)
    from apps.observability.logging import formatting

    index = formatting.SHARED_PROCESSORS.index(formatting.add_timestamp)
    stamper = formatting.SHARED_PROCESSORS[index]
    formatting.SHARED_PROCESSORS[index] = fixed
    try:
        emit_to_handler_only(logger_name, handler)
    finally:
        formatting.SHARED_PROCESSORS[index] = stamper
    return handler.stream.getvalue()


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_a_line_written_without_a_record_is_the_line_the_record_gives(log_format):
    direct = logging.StreamHandler(io.StringIO())
    direct.setFormatter(structured_formatter(log_format))
    through_record = logging.StreamHandler(io.StringIO())
    through_record.setFormatter(structured_formatter(log_format))
    passed = []
    through_record.addFilter(lambda record: passed.append(record) or True)

    text = _emitted_lines("apps.logging_test.direct", direct)

    assert text == _emitted_lines("apps.logging_test.direct", through_record)
    assert len(passed) == 1  # a filtered handler still gets its record
    assert text.endswith("\n")
    assert text.count("\n") == 1
    assert "p4ss-in-field" not in text


def test_a_filter_on_the_way_still_decides_about_emitted_lines():
    logger = logging.getLogger("apps.logging_test.filtered")
    logger.addFilter(lambda record: False)
    try:
        with captured_console() as console:
            emit(logger, logging.INFO, {**EVENT_WITH_A_SECRET, "event": "event"})
    finally:
        logger.filters.clear()
    assert console.getvalue() == ""


def test_a_hook_in_the_logging_machinery_still_sees_emitted_lines(monkeypatch):
    # Sentry's logging integration replaces Logger.callHandlers to see every record.
    seen = []
    call_handlers = logging.Logger.callHandlers

    def hooked(self, record):
        seen.append(record)
        return call_handlers(self, record)

    monkeypatch.setattr(logging.Logger, "callHandlers", hooked)
    with captured_console() as console:
        emit(logging.getLogger("apps.logging_test.hooked"), logging.INFO, {"event": "event"})
    assert [record.msg["event"] for record in seen] == ["event"]
    assert json_lines(console.getvalue())[0]["event"] == "event"
