"""One logging pipeline for Django, gunicorn and the project: structlog over the stdlib.

settings.LOGGING installs `structured_formatter` on every handler, so records from any stdlib
logger and events from structlog loggers leave through the same processors: JSON lines in
production, a readable console format in development.
"""

import os

import structlog


def add_process_id(logger, method_name, event_dict):
    event_dict.setdefault("pid", os.getpid())
    return event_dict


SHARED_PROCESSORS = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    add_process_id,
]


def configure_structlog():
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
        # format_exc_info renders the traceback as text: no local variables, which hold secrets.
        final = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        final = [structlog.dev.ConsoleRenderer(colors=False)]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            *SHARED_PROCESSORS,
            structlog.stdlib.ExtraAdder(),
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )


def get_logger(name):
    return structlog.get_logger(name)
