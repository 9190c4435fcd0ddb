"""One logging pipeline for Django, gunicorn and the project: structlog over the stdlib.

settings.LOGGING installs `structured_formatter` on every handler, so records from any stdlib
logger (Django, DRF, gunicorn, libraries) and events from structlog loggers leave through the
same processors: JSON lines in production, a readable console format in development.

Every line gets the request context (request id, method, route, user and organization ids) while
a request is being served, and every line is redacted (apps/common/redaction.py) after its
exception is rendered, so secrets in messages, fields and tracebacks never reach a handler.

The access line, written on every request, takes a shorter road to the same handlers (`emit`):
the processors structlog's logger would run, each output format rendered once per line however
many handlers use it, and the line written straight to the plain stream handlers (the console)
without a LogRecord. Any other handler, a filter on the way or a hook in the logging machinery
(Sentry's) gets the LogRecord as before, so every handler, filter and level still applies.
"""

import json
import logging
import time

import orjson
import structlog

from apps.common import process_id
from apps.common.redaction import is_sensitive_key, redact_event_dict, redact_text
from apps.common.request_context import current_request_state, request_identity
from apps.observability.logging import bound_context


def add_process_id(logger, method_name, event_dict):
    event_dict.setdefault("pid", process_id.current)
    return event_dict


# (second, its "YYYY-MM-DDTHH:MM:SS" in UTC): formatted once a second, one tuple so that threads
# never pair a second with another second's text.
_formatted_second = (None, "")


def add_timestamp(logger, method_name, event_dict):
    """structlog's TimeStamper(fmt="iso", utc=True), cheaper (`format_timestamp`)."""
    event_dict["timestamp"] = format_timestamp(time.time())
    return event_dict


def format_timestamp(now):
    """`now` (time.time()) in ISO 8601 in UTC with microseconds and "Z". datetime's isoformat
    takes most of a microsecond; the date and time of day change once a second and are
    formatted then."""
    global _formatted_second
    second = int(now)
    formatted = _formatted_second
    if formatted[0] != second:
        formatted = _formatted_second = (
            second,
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)),
        )
    return f"{formatted[1]}.{int((now - second) * 1_000_000):06d}Z"


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
    bound_context.merge_contextvars,
    add_request_context,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    add_timestamp,
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


# The LogRecord attribute under which `emit` keeps each format's rendering of its event.
RENDERED_ATTRIBUTE = "structured_renderings"
_METHOD_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning"}


def emit(logger, level, event_dict):
    """Log `event_dict` on the stdlib `logger` exactly as structlog's logger of that name would.

    The same processors, the same record (the event dict as its message, marked as structlog's),
    so the same lines reach the same handlers; without structlog's bound logger, the caller
    lookup (findCaller) and the record copy of ProcessorFormatter. The caller checks the level:
    `logger.isEnabledFor(level)` before building the event.

    When every handler on the way is a plain stream handler with a StructuredFormatter and
    nothing filters or hooks the records (`direct_handlers`), the rendered line is written to
    them without building a LogRecord: the same text, as StreamHandler.emit writes it.
    """
    method_name = _method_name(level)
    for processor in SHARED_PROCESSORS:
        event_dict = processor(logger, method_name, event_dict)
    handlers = None if "exc_info" in event_dict else direct_handlers(logger)
    if handlers is None:
        _handle_record(logger, level, method_name, event_dict)
        return
    _write_direct(handlers, logger, level, method_name, event_dict, redacted=False)


# The types of value a line from `emit_redacted` may hold: rendered as they are, never stringified.
_PLAIN_VALUE_TYPES = frozenset({str, int, float, bool, type(None)})
# Field names found not sensitive (is_sensitive_key), those the processors add among them: a
# line's names are checked in one go.
_PLAIN_FIELD_NAMES = {"request_id", "method", "route", "user_id", "organization_id"}
_PLAIN_FIELD_NAMES.update(("level", "logger", "timestamp", "pid"))
# Names are remembered up to this many, however many a caller makes up.
_MAX_PLAIN_FIELD_NAMES = 1024


def emit_redacted(logger, level, fields, buffer=None):
    """`emit` for a line whose fields the caller has redacted (redact_text) or wrote itself:
    numbers and text no client sent. The access line, on every request.

    What the shared processors add is added here, in their order, the request id and method
    (which the client sends) redacted; then each handler's formatter renders the line without
    redacting it again. Redacting every field of every line is most of a line's cost. The line
    is `emit`'s, and `emit`'s road is taken whenever it could differ: a handler that is not
    direct, a structlog binding (any value) or an exception (`exc_info`, which is rendered as
    text) send the line to `emit`; a value that is not a plain number or text, or a field name
    redaction hides, has every field redacted by the formatters (`line_event`).

    With a `buffer` (logging/buffer.py), a line that takes the direct road is handed to it with
    its moment and request context, to be made into its event, rendered and written with others.
    """
    handlers = None if bound_context.has_bindings() else direct_handlers(logger)
    if handlers is None or "exc_info" in fields:
        emit(logger, level, fields)
        return
    state = current_request_state()
    context = None
    if state is not None:
        context = (state.request_id, state.method, state.route, *request_identity(state.request))
    now = time.time()
    if buffer is not None:
        buffer.add(handlers, logger, level, fields, context, now)
        return
    method_name, event_dict, redacted = line_event(logger, level, fields, context, now)
    _write_direct(handlers, logger, level, method_name, event_dict, redacted=redacted)


def line_event(logger, level, fields, context, now):
    """(method name, event dict, whether it is redacted) of a line from `emit_redacted`: what the
    shared processors would add to `fields` at `now` in the request `context` (request id,
    method, route, user and organization ids, or None). When every value is plain and no field
    name is sensitive, the client's text is redacted here and the line is `redacted`; otherwise
    the formatters redact it all, as they do for `emit`."""
    method_name = _method_name(level)
    user_id = organization_id = None
    if context is not None:
        request_id, method, route, user_id, organization_id = context
    redacted = (
        _PLAIN_VALUE_TYPES.issuperset(map(type, fields.values()))
        and type(user_id) in _PLAIN_VALUE_TYPES
        and type(organization_id) in _PLAIN_VALUE_TYPES
        and _plain_field_names(fields)
    )
    # The caller's dict becomes the event, as with `emit`.
    event_dict = fields
    if context is not None:
        # add_request_context, with the client's text redacted when the formatters will not.
        if redacted:
            request_id, method = redact_text(request_id), redact_text(method)
        event_dict.setdefault("request_id", request_id)
        event_dict.setdefault("method", method)
        if route is not None:
            event_dict.setdefault("route", route)
        if user_id is not None:
            event_dict.setdefault("user_id", user_id)
        if organization_id is not None:
            event_dict.setdefault("organization_id", organization_id)
    event_dict["level"] = method_name
    event_dict["logger"] = logger.name
    event_dict["timestamp"] = format_timestamp(now)
    event_dict.setdefault("pid", process_id.current)
    return method_name, event_dict, redacted


def _plain_field_names(fields):
    """Whether no name in `fields` is one redaction hides (is_sensitive_key)."""
    if _PLAIN_FIELD_NAMES.issuperset(fields):
        return True
    if any(is_sensitive_key(name) for name in fields):
        return False
    if len(_PLAIN_FIELD_NAMES) < _MAX_PLAIN_FIELD_NAMES:
        _PLAIN_FIELD_NAMES.update(fields)
    return True


def _method_name(level):
    return _METHOD_NAMES.get(level, "error" if level < logging.CRITICAL else "critical")


def rendered_lines(handlers, logger, level, method_name, event_dict, *, redacted):
    """(handler, text) for each of `handlers` whose level takes the line, each output format
    rendered once."""
    renderings = {}
    for handler in handlers:
        if level < handler.level:
            continue
        formatter = handler.formatter
        text = renderings.get(formatter.output_format)
        if text is None:
            text = renderings[formatter.output_format] = formatter.render(
                logger, method_name, event_dict, redacted=redacted
            )
        yield handler, text


def _write_direct(handlers, logger, level, method_name, event_dict, *, redacted):
    for handler, text in rendered_lines(
        handlers, logger, level, method_name, event_dict, redacted=redacted
    ):
        write_line(handler, text, logger, level, method_name, event_dict)


def _make_record(logger, level, method_name, event_dict):
    return logger.makeRecord(
        logger.name,
        level,
        __file__,
        0,
        event_dict,
        (),
        None,
        extra={"_logger": logger, "_name": method_name, RENDERED_ATTRIBUTE: {}},
    )


def _handle_record(logger, level, method_name, event_dict):
    logger.handle(_make_record(logger, level, method_name, event_dict))


def write_line(handler, text, logger, level, method_name, event_dict):
    """StreamHandler.handle, .emit and .flush without a record: its lock, its terminator, its
    flush. `text` may be several lines joined by the handler's terminator; a failure is reported
    with a record of `event_dict`."""
    handler.acquire()
    try:
        stream = handler.stream
        stream.write(text + handler.terminator)
        if hasattr(stream, "flush"):
            stream.flush()
    except RecursionError:
        raise
    except Exception:
        handler.handleError(_make_record(logger, level, method_name, event_dict))
    finally:
        handler.release()


# logging.Logger.callHandlers as the stdlib defines it: Sentry's logging integration replaces
# it to see every record, and then every line takes the record's road.
_STDLIB_CALL_HANDLERS = logging.Logger.callHandlers


def direct_handlers(logger):
    """The handlers a record of `logger` would reach, when the line can be written to each of
    them directly: plain StreamHandlers (not subclasses: a file handler opens, rotates or
    reopens its file in emit) with a StructuredFormatter, and no filter on the loggers or the
    handlers. None when any of that does not hold, or when no handler would take the record
    (logging's last resort applies)."""
    if logging.Logger.callHandlers is not _STDLIB_CALL_HANDLERS or logger.disabled:
        return None
    handlers = []
    current = logger
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:
            if (
                type(handler) is not logging.StreamHandler
                or handler.filters
                or not isinstance(handler.formatter, StructuredFormatter)
            ):
                return None
            handlers.append(handler)
        current = current.parent if current.propagate else None
    return handlers or None


class StructuredFormatter(structlog.stdlib.ProcessorFormatter):
    """ProcessorFormatter that renders a line from `emit` once per output format.

    The console and LOG_FILE handlers share the JSON rendering of an access line instead of
    redacting and serialising it twice; the text is what ProcessorFormatter.format returns.
    """

    def __init__(self, *args, output_format, **kwargs):
        super().__init__(*args, **kwargs)
        self.output_format = output_format
        # What a line from `emit` goes through: it carries no record to remove from it; a line
        # from `emit_redacted` is not redacted again.
        self.line_processors = [
            processor
            for processor in self.processors
            if processor is not structlog.stdlib.ProcessorFormatter.remove_processors_meta
        ]
        self.redacted_line_processors = [
            processor
            for processor in self.line_processors
            if processor not in (redact_event_dict, structlog.processors.format_exc_info)
        ]

    def format(self, record):
        renderings = record.__dict__.get(RENDERED_ATTRIBUTE)
        if renderings is None or record.exc_info or record.stack_info:
            return super().format(record)
        text = renderings.get(self.output_format)
        if text is None:
            # ProcessorFormatter.format without its record copy: the record is not modified.
            logger = self.logger if self.logger is not None else record._logger
            event_dict = {**record.msg, "_record": record, "_from_structlog": True}
            for processor in self.processors:
                event_dict = processor(logger, record._name, event_dict)
            text = renderings[self.output_format] = event_dict
        return text

    def render(self, logger, method_name, event_dict, *, redacted=False):
        """The text `format` returns for a line from `emit`, without a record; `redacted` for a
        line from `emit_redacted`."""
        if self.logger is not None:
            logger = self.logger
        event_dict = dict(event_dict)
        for processor in self.redacted_line_processors if redacted else self.line_processors:
            event_dict = processor(logger, method_name, event_dict)
        return event_dict


COMPACT_SEPARATORS = (",", ":")


def json_dumps(value, default=None, **options):
    """The event as a JSON line: orjson's, or json.dumps' when orjson cannot render it exactly.

    orjson renders an access line in a sixth of json.dumps' time, compact and in UTF-8. A line with
    non-ASCII text, an integer beyond 64 bits or a type orjson refuses goes through json.dumps,
    just as compact, so every line is ASCII (other characters escaped) whichever renders it.
    """
    try:
        text = orjson.dumps(value, default=default)
    except orjson.JSONEncodeError:
        # Non-string keys are rare, and the option that renders them slows every line down.
        try:
            text = orjson.dumps(value, default=default, option=orjson.OPT_NON_STR_KEYS)
        except orjson.JSONEncodeError:
            text = None
    if text is None or not text.isascii():
        return json.dumps(value, default=default, separators=COMPACT_SEPARATORS, **options)
    return text.decode("ascii")


def structured_formatter(log_format="json"):
    """Formatter factory referenced from settings.LOGGING ("()" key)."""
    configure_structlog()
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer(serializer=json_dumps)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    return StructuredFormatter(
        output_format=log_format,
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
    """Drops `django.request` records of requests the observability middleware logs itself.

    Django logs every 4xx/5xx response there, and 5xx twice over with the traceback; the access
    line already carries the status and the traceback, with the request id. Liveness and
    readiness probes are logged by ProbeMiddleware when readiness changes, not on each 503.
    Other requests answered before the request context (static files, /metrics) keep Django's
    line.
    """

    def filter(self, record):
        request = getattr(record, "request", None)
        return not (
            getattr(request, "has_access_line", False) or getattr(request, "is_quiet_probe", False)
        )
