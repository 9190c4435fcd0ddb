"""Access lines rendered and written in batches (apps/observability/logging/buffer.py)."""

import logging
import os
import time
from contextlib import contextmanager

import pytest
from django.http import JsonResponse
from django.test import RequestFactory, override_settings
from prometheus_client import REGISTRY

from apps.common import request_context
from apps.observability.logging import buffer as line_buffer
from apps.observability.logging import formatting
from apps.observability.logging.buffer import MAX_PENDING_LINES, LineBuffer
from apps.observability.logging.middleware import RequestContextMiddleware
from tests.observability import logging_capture
from tests.observability.logging_capture import json_lines
from tests.processes import wait_until

WRITER_WAIT_SECONDS = 10


def plain_stream_logger():
    return logging_capture.plain_stream_logger("apps.logging_test.buffer")


@pytest.fixture
def buffer():
    fresh = LineBuffer()
    yield fresh
    fresh.stop()


def fields(number, **extra):
    return {"path": f"/items/{number}/", "status": 200, "event": "request", **extra}


def in_a_request(callback, request_id="req-1"):
    _, token = request_context.enter_request(RequestFactory().get("/x/"), request_id)
    try:
        callback()
    finally:
        request_context.exit_request(token)


def test_a_buffered_line_is_the_line_written_at_once(buffer):
    with plain_stream_logger() as (logger, stream):

        def emit_both():
            formatting.emit_redacted(logger, logging.INFO, fields(1))
            formatting.emit_redacted(logger, logging.INFO, fields(1), buffer)
            buffer.write()

        in_a_request(emit_both)

        at_once, buffered = json_lines(stream.getvalue())
        assert at_once.pop("timestamp") <= buffered.pop("timestamp")
        assert list(buffered.items()) == list(at_once.items())
        assert buffered["request_id"] == "req-1"


def test_a_buffered_line_waits_for_the_batch(buffer):
    with plain_stream_logger() as (logger, stream):
        formatting.emit_redacted(logger, logging.INFO, fields(1), buffer)
        written_before = stream.getvalue()
        buffer.write()

        assert written_before == ""
        assert [line["path"] for line in json_lines(stream.getvalue())] == ["/items/1/"]


def test_a_warning_line_is_written_at_once_after_the_pending_lines(buffer):
    with plain_stream_logger() as (logger, stream):
        formatting.emit_redacted(logger, logging.INFO, fields(1), buffer)
        formatting.emit_redacted(logger, logging.INFO, fields(2), buffer)
        formatting.emit_redacted(logger, logging.WARNING, fields(3, slow=True), buffer)

        lines = json_lines(stream.getvalue())
        assert [(line["path"], line["level"]) for line in lines] == [
            ("/items/1/", "info"),
            ("/items/2/", "info"),
            ("/items/3/", "warning"),
        ]
        assert buffer.pending_count() == 0


def test_the_line_that_fills_the_batch_writes_it(buffer):
    with plain_stream_logger() as (logger, stream):
        for number in range(MAX_PENDING_LINES - 1):
            formatting.emit_redacted(logger, logging.INFO, fields(number), buffer)
        written_before_the_last = stream.getvalue()
        formatting.emit_redacted(logger, logging.INFO, fields("last"), buffer)

        assert written_before_the_last == ""
        paths = [line["path"] for line in json_lines(stream.getvalue())]
        assert paths == [f"/items/{number}/" for number in [*range(MAX_PENDING_LINES - 1), "last"]]


@override_settings(LOG_ACCESS_BUFFER_SECONDS=0.05)
def test_the_writer_thread_writes_pending_lines_without_another_request(buffer):
    with plain_stream_logger() as (logger, stream):
        formatting.emit_redacted(logger, logging.INFO, fields(1), buffer)
        wait_until(stream.getvalue, WRITER_WAIT_SECONDS, step=0.01)

        assert [line["path"] for line in json_lines(stream.getvalue())] == ["/items/1/"]


class Unrenderable:
    def __repr__(self):
        raise ValueError("no text for this value")


def test_a_line_that_cannot_be_rendered_loses_no_other_line(buffer):
    with plain_stream_logger() as (logger, stream):
        handlers = formatting.direct_handlers(logger)
        failures = ("orders_after_response_failures_total", {"work": "access line"})
        failures_before = REGISTRY.get_sample_value(*failures) or 0

        formatting.emit_redacted(logger, logging.INFO, fields(1), buffer)
        # emit_redacted hands over plain values only: a value no renderer can show stands in for
        # a formatter that fails.
        buffer.add(
            handlers, logger, logging.INFO, fields(2, broken=Unrenderable()), None, time.time()
        )
        formatting.emit_redacted(logger, logging.INFO, fields(3), buffer)
        buffer.write()

        assert [line["path"] for line in json_lines(stream.getvalue())] == [
            "/items/1/",
            "/items/3/",
        ]
        assert REGISTRY.get_sample_value(*failures) == failures_before + 1


def test_a_forked_child_starts_with_no_pending_line():
    with plain_stream_logger() as (logger, _):
        formatting.emit_redacted(logger, logging.INFO, fields(1), line_buffer.access_lines)
        try:
            pid = os.fork()
            if pid == 0:  # the child: report what it inherited, write nothing
                os._exit(line_buffer.access_lines.pending_count())
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
            assert line_buffer.access_lines.pending_count() == 1
        finally:
            line_buffer.access_lines.write()
            line_buffer.access_lines.stop()


@contextmanager
def buffered_middleware(monkeypatch, view):
    """RequestContextMiddleware around `view`, its access lines going to a fresh LineBuffer and
    a plain stream; yields (middleware, buffer, stream)."""
    with plain_stream_logger() as (logger, stream):
        buffer = LineBuffer()
        monkeypatch.setattr("apps.observability.logging.middleware.access_lines", buffer)
        monkeypatch.setattr("apps.observability.logging.middleware.access_logger", logger)
        try:
            yield RequestContextMiddleware(view), buffer, stream
        finally:
            buffer.stop()


@override_settings(LOG_ACCESS_BUFFER_SECONDS=60)
def test_the_middleware_hands_an_access_line_to_the_buffer_as_the_response_leaves(monkeypatch):
    with buffered_middleware(monkeypatch, lambda request: JsonResponse({"ok": True})) as (
        middleware,
        buffer,
        stream,
    ):
        response = middleware(RequestFactory().get("/x/", headers={"x-request-id": "buffered-1"}))
        pending_before_close = buffer.pending_count()
        response.close()
        written_when_closed = stream.getvalue()
        buffer.write()

    assert pending_before_close == 1
    assert written_when_closed == ""
    (line,) = json_lines(stream.getvalue())
    assert (line["request_id"], line["path"], line["status"]) == ("buffered-1", "/x/", 200)


def slow_view(request):
    time.sleep(0.005)
    return JsonResponse({"ok": True})


@override_settings(LOG_ACCESS_BUFFER_SECONDS=60, LOG_SLOW_REQUEST_MS=1)
def test_a_slow_requests_line_is_written_once_the_response_is_sent(monkeypatch):
    with buffered_middleware(monkeypatch, slow_view) as (middleware, buffer, stream):
        response = middleware(RequestFactory().get("/slow/"))
        held_before_close = (buffer.pending_count(), stream.getvalue())
        response.close()

    assert held_before_close == (0, "")
    (line,) = json_lines(stream.getvalue())
    assert (line["path"], line["level"], line["slow"]) == ("/slow/", "warning", True)


@override_settings(LOG_ACCESS_BUFFER_SECONDS=60)
def test_a_full_batch_wakes_the_writer_thread(buffer):
    with plain_stream_logger() as (logger, stream):
        for number in range(MAX_PENDING_LINES):
            formatting.emit_redacted(logger, logging.INFO, fields(number), buffer)

        def all_written():
            return len(stream.getvalue().splitlines()) == MAX_PENDING_LINES

        # Well before the writer's interval.
        assert wait_until(all_written, WRITER_WAIT_SECONDS, step=0.01)
