"""One logging pipeline for Django, gunicorn and the project: structlog over the stdlib.

settings.LOGGING installs `structured_formatter` on every handler, so records from any stdlib
logger (Django, DRF, gunicorn, libraries) and events from structlog loggers leave through the
same processors: JSON lines in production, a readable console format in development.

Every line gets the request context (request id, method, route, user and organization ids) while
a request is being served, and every line is redacted (apps/observability/redaction.py) after its
exception is rendered, so secrets in messages, fields and tracebacks never reach a handler.
"""

import logging
import os

import structlog

from apps.observability.redaction import redact_event_dict
from apps.observability.request_context import current_request_state, request_identity


def add_process_id(logger, method_name, event_dict):
    event_dict.setdefault("pid", os.getpid())
    return event_dict


def add_request_context(logger, method_name, event_dict):
    """Request id, method, route, user and organization ids of the request being served."""
    state = current_request_state()
    if state is None:
        return event_dict
    event_dict.setdefault("request_id", state.request_id)
    event_dict.setdefault("method", state.method)
    if state.route is not None:
        event_dict.setdefault("route", state.route)
    user_id, organization_id = request_identity(state.request)
    if user_id is not None:
        event_dict.setdefault("user_id", user_id)
    if organization_id is not None:
        event_dict.setdefault("organization_id", organization_id)
    return event_dict


SHARED_PROCESSORS = [
    structlog.contextvars.merge_contextvars,
    add_request_context,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    add_process_id,
]


def configure_structlog():
    """structlog hands its events to the stdlib logger of the same name (levels, handlers)."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *SHARED_PROCESSORS,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def structured_formatter(log_format="json"):
    """Formatter factory referenced from settings.LOGGING ("()" key)."""
    configure_structlog()
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*SHARED_PROCESSORS, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # The traceback as plain text, before redaction: no local variables (they hold
            # secrets; the console renderer's Rich tracebacks would show them), and secrets in
            # the exception message are redacted like any other text.
            structlog.processors.format_exc_info,
            redact_event_dict,
            renderer,
        ],
    )


class SkipRequestsWithAccessLine(logging.Filter):
    """Drops `django.request` records of requests whose access line the middleware writes.

    Django logs every 4xx/5xx response there, and 5xx twice over with the traceback; the access
    line already carries the status and the traceback, with the request id. Requests answered
    before the middleware (probes, static files) keep Django's line.
    """

    def filter(self, record):
        request = getattr(record, "request", None)
        return not getattr(request, "has_access_line", False)


def get_logger(name):
    return structlog.get_logger(name)
