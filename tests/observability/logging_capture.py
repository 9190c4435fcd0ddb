"""Capturing what the project's real log handlers write, for the logging tests."""

import io
import json
import logging
from contextlib import contextmanager

from django.conf import settings

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


def json_lines(text):
    """Every line parsed as JSON (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def access_lines(lines):
    return [line for line in lines if line.get("logger") == ACCESS_LOGGER]
