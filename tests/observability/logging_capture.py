"""Capturing what the project's real log handlers write, for the logging tests."""

import io
import json
import logging
from contextlib import contextmanager
from unittest import mock

from django.conf import settings

from apps.observability.logging import formatting
from apps.observability.logging.formatting import structured_formatter

ACCESS_LOGGER = "apps.observability.access"


def console_handler():
    """The console handler settings.LOGGING installed on the root logger."""
    for handler in logging.getLogger().handlers:
        if handler.get_name() == "console":
            return handler
    raise AssertionError("settings.LOGGING installs no 'console' handler on the root logger")


@contextmanager
def captured_console():
    """Everything the real console handler writes, with its own (project) formatter, as text.

    Lines are JSON as in production even if the caller's LOG_FORMAT says console.
    """
    handler = console_handler()
    buffer = io.StringIO()
    previous_stream = handler.setStream(buffer)
    previous_formatter = handler.formatter
    if settings.LOG_FORMAT != "json":
        handler.setFormatter(structured_formatter("json"))
    try:
        yield buffer
    finally:
        handler.setStream(previous_stream)
        handler.setFormatter(previous_formatter)


@contextmanager
def plain_stream_logger(name):
    """The logger `name` with one handler, a plain stream handler with the project's JSON
    formatter, not propagating: the direct road a production line takes. Yields (logger, stream).

    Enter it in the test's body, not in a fixture: pytest adds its capture handlers to the
    loggers that exist when a test starts, which would divert lines to the record's road. Sentry's
    logging integration, once a test in this process has initialised it, replaces
    Logger.callHandlers for good: the stdlib's is put back meanwhile.
    """
    logger = logging.getLogger(name)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structured_formatter("json"))
    saved_handlers = logger.handlers
    logger.handlers = [handler]
    logger.propagate = False
    try:
        with mock.patch.object(logging.Logger, "callHandlers", formatting._STDLIB_CALL_HANDLERS):
            assert formatting.direct_handlers(logger) == [handler]
            yield logger, stream
    finally:
        logger.handlers = saved_handlers
        logger.propagate = True


def json_lines(text):
    """Every line parsed as JSON (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def access_lines(lines):
    return [line for line in lines if line.get("logger") == ACCESS_LOGGER]
