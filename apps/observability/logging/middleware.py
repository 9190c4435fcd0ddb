"""Request context and the one access line per request.

RequestContextMiddleware sits right after the probes (settings.MIDDLEWARE):

- it takes the request id from X-Request-ID when sane, else makes one, echoes it in the
  response and makes it, the method, the route (once URLs are resolved), the user and the
  organization part of every log line written while the request is served;
- it writes one access line per request (logger `apps.observability.access`): method, route,
  path without query string, status, duration, response size, query count and database time,
  user and organization ids. A request silk recorded says how many queries silk's recording ran
  and how long it took (`profiler_queries`, `profiler_ms`): neither is in the request's counts
  and duration. Slow requests (LOG_SLOW_REQUEST_MS) are WARNING with their heaviest
  query fingerprints, 5xx are ERROR with the traceback (rendered without local variables).

It replaces gunicorn's access log (gunicorn.conf.py) and Django's `django.request` lines for the
requests it sees (SkipRequestsWithAccessLine in logging/formatting.py): one line per request.
Probes are answered before it, static files are not logged. The line is measured when the
response leaves the middleware and written once the server has sent it and closes it, in the
request's context (apps/observability/after_response.py), as gunicorn writes its own access log.
It goes through `emit_redacted` (logging/formatting.py): the same line and handlers as a
structlog logger, at a fraction of the cost, and not built at all when the level filters it out;
the path is its only client text, redacted here, and the rest is numbers and names. In
production the lines are rendered and written in batches, at most LOG_ACCESS_BUFFER_SECONDS
after their requests (logging/buffer.py): an INFO line is handed to the buffer as the response
leaves, those of slow requests and 5xx are written once the response is sent, as before.
"""

import logging

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings

from apps.common import request_context
from apps.common.redaction import redact_text
from apps.common.sql import normalise_sql
from apps.observability.after_response import call_after_response
from apps.observability.logging import bound_context, sentry
from apps.observability.logging.buffer import access_lines
from apps.observability.logging.formatting import emit_redacted

ACCESS_LOGGER_NAME = sentry.ACCESS_LOGGER_NAME
access_logger = logging.getLogger(ACCESS_LOGGER_NAME)
TOP_QUERIES = 3


def heaviest_queries(query_stats, limit=TOP_QUERIES):
    """The `limit` fingerprints with the most total time: [{fingerprint, count, total_ms}]."""
    totals = {}
    for sql, (count, seconds) in query_stats.statements.items():
        entry = totals.setdefault(normalise_sql(sql)[0], [0, 0.0])
        entry[0] += count
        entry[1] += seconds
    ranked = sorted(totals.items(), key=lambda item: item[1][1], reverse=True)[:limit]
    return [
        {"fingerprint": fingerprint, "count": count, "total_ms": round(seconds * 1000, 2)}
        for fingerprint, (count, seconds) in ranked
    ]


def response_size(response):
    if getattr(response, "streaming", False):
        length = response.get("Content-Length")
        return int(length) if length and length.isdigit() else None
    return len(response.content)


class RequestContextMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
        self.unlogged_prefixes = tuple(
            prefix for prefix in (settings.STATIC_URL,) if prefix and prefix.startswith("/")
        )
        self.sentry_enabled = sentry.is_enabled()
        # Lines rendered and written in batches (logging/buffer.py), or each at once.
        self.line_buffer = access_lines if settings.LOG_ACCESS_BUFFER_SECONDS > 0 else None
        request_context.install()

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        state, token = self.start(request)
        try:
            response = self.get_response(request)
            self.finish(request, response, state)
        finally:
            self.end(token)
        return response

    async def __acall__(self, request):
        state, token = self.start(request)
        try:
            response = await self.get_response(request)
            self.finish(request, response, state)
        finally:
            self.end(token)
        return response

    def start(self, request):
        # Bindings a previous request on this thread left behind must not leak into this one.
        bound_context.clear_contextvars()
        request_id = request_context.request_id_from_header(
            request.META.get(request_context.REQUEST_ID_META_KEY)
        )
        request.request_id = request_id
        request.has_access_line = not request.path_info.startswith(self.unlogged_prefixes)
        if self.sentry_enabled:
            sentry.tag_request(request_id=request_id)
        return request_context.enter_request(request, request_id)

    def finish(self, request, response, state):
        # The request's clock stops here, for every reader (telemetry's record runs now).
        state.finish()
        response[request_context.REQUEST_ID_HEADER] = state.request_id
        if self.sentry_enabled:
            # Read by the request's transaction, which Sentry finishes after the response.
            sentry.tag_request(route=state.route)
        if request.has_access_line:
            try:
                line = self.access_line(request, response, state)
                if line is not None:
                    self.write_access_line(response, *line)
            except Exception:
                # Logging must never turn a served request into an error.
                access_logger.exception("access line failed")

    def write_access_line(self, response, level, fields):
        if self.line_buffer is not None and level == logging.INFO:
            # An append to the buffer: cheap enough to do before the response is sent.
            emit_redacted(access_logger, level, fields, self.line_buffer)
            return
        call_after_response(
            response, "access line", emit_redacted, access_logger, level, fields, self.line_buffer
        )

    def end(self, token):
        request_context.exit_request(token)
        bound_context.clear_contextvars()

    def access_line(self, request, response, state):
        """(level, event) of the request's access line, or None when its level is off."""
        status = response.status_code
        slow = state.slow
        if status >= 500:
            level = logging.ERROR
        elif slow:
            level = logging.WARNING
        else:
            level = logging.INFO
        if not access_logger.isEnabledFor(level):
            return None
        queries = state.queries
        fields = {
            # The only text here a client sent (emit_redacted adds the request id and method).
            "path": redact_text(request.path),
            "status": status,
            "duration_ms": round(state.duration_ms, 2),
            "response_bytes": response_size(response),
            "query_count": queries.count,
            "db_time_ms": round(queries.seconds * 1000, 2),
        }
        if state.profiler_queries:
            fields["profiler_queries"] = state.profiler_queries
            fields["profiler_ms"] = round(state.profiler_seconds * 1000, 2)
        if slow:
            fields["slow"] = True
            fields["top_queries"] = heaviest_queries(queries)
        if status >= 500 and state.exception is not None:
            fields["exc_info"] = state.exception
        fields["event"] = "request"
        return level, fields
