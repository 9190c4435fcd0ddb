"""What is known about the request being served, in context variables.

Context variables are per thread and per asyncio task, so threaded workers and async views each
see their own request. Logging (structlog's merge_contextvars and `add_request_context`),
telemetry and error tracking read them through these functions.

RequestContextMiddleware (apps/observability/logging/middleware.py) sets them at the start of a
request and resets them at its end. What every reader needs is decided here once: the queries of
the request (count, time, statements), the exception that turned it into a 500, and its duration
on one clock with whether that makes it slow (LOG_SLOW_REQUEST_MS), so that the access line,
telemetry, the slow-request rows and Prometheus never disagree about a request.

A profiler recording the request (silk) marks its own work with `profiler_work()`: the queries it
runs there (its rows, its EXPLAINs) are not the request's, and the time it spends there is taken
off the request's duration, so that a recorded request reports what an unrecorded one would.
"""

import contextlib
import contextvars
import functools
import os
import re
import sys
import time

from django.conf import settings
from django.core.signals import got_request_exception
from django.utils.functional import empty

from apps.common.database import install_execute_wrapper

# The RequestState of the request being served (None outside one).
request_state_var = contextvars.ContextVar("request_state", default=None)

REQUEST_ID_HEADER = "X-Request-ID"
# The same header in request.META (WSGI and ASGI alike): reading it there spares building
# request.headers, a dict of every header, on each request (~20 us).
REQUEST_ID_META_KEY = "HTTP_X_REQUEST_ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# The route of requests that matched no URL pattern: one label, so that random paths cannot grow
# the statistics, metrics or findings.
UNMATCHED_ROUTE = "<unmatched>"
# The attribute `answers_unmatched_paths` sets on a catch-all view.
UNMATCHED_MARK = "answers_unmatched_paths"
ROUTE_LENGTH = 255  # the route columns' width: a longer value would fail every write
# Distinct SQL strings remembered per request for the slow-request summary; beyond this a request
# is still counted and timed, only its further statements are not told apart.
MAX_DISTINCT_STATEMENTS = 200


def current_request_id():
    """The id of the request being served (echoed in X-Request-ID), or None outside one."""
    state = request_state_var.get()
    return None if state is None else state.request_id


def current_request_state():
    """The RequestState of the request being served, or None outside one."""
    return request_state_var.get()


def request_id_from_header(value):
    """The client's X-Request-ID when it is sane (1-128 of [A-Za-z0-9._-]), else a new one.

    Anything else could forge log lines, blow up their size or carry a secret. A new id is 128
    random bits in 32 hex digits (a uuid4's size without building a UUID object).
    """
    if value and _SANE_REQUEST_ID.fullmatch(value):
        return value
    # secrets.token_hex(16), without its two Python calls on every request.
    return os.urandom(16).hex()


def _named_groups_as_placeholders(route):
    # "(?P<pk>[^/.]+)" -> "<pk>", nested parentheses included.
    parts = []
    position = 0
    while (start := route.find("(?P<", position)) != -1:
        parts.append(route[position:start])
        name_end = route.find(">", start)
        depth = 0
        end = start
        for end in range(start, len(route)):
            depth += {"(": 1, ")": -1}.get(route[end], 0)
            if depth == 0:
                break
        parts.append(f"<{route[start + 4 : name_end]}>")
        position = end + 1
    parts.append(route[position:])
    return "".join(parts)


def route_template(resolver_match):
    """The URL pattern that matched, with a leading slash: '/api/v1/orders/<int:pk>/'.

    Regex patterns (DRF routers) are shown the same way: '^orders/(?P<pk>[^/.]+)/$' becomes
    '/orders/<pk>/'. None when nothing matched (a 404), UNMATCHED_ROUTE when a catch-all view
    (`answers_unmatched_paths`) did. Logs, Sentry tags, telemetry, findings and the metrics'
    view label all read it from here.
    """
    route = getattr(resolver_match, "route", None)
    if route is None:
        return None
    if getattr(getattr(resolver_match, "func", None), UNMATCHED_MARK, False):
        return UNMATCHED_ROUTE
    return _template_of(route)


def answers_unmatched_paths(view):
    """Mark a catch-all view (a JSON 404 for any other path under a prefix): the requests it
    answers are labelled UNMATCHED_ROUTE, like those no pattern matched, never with its regex."""
    setattr(view, UNMATCHED_MARK, True)
    return view


def route_label(resolver_match):
    """The route template as statistics and findings store it: UNMATCHED_ROUTE for a 404, and
    never longer than their columns."""
    return label_of_route(route_template(resolver_match))


def label_of_route(route):
    """`route_label` of a route template already looked up (None for a 404)."""
    return (route or UNMATCHED_ROUTE)[:ROUTE_LENGTH]


@functools.lru_cache(maxsize=1024)
def _template_of(route):
    # Patterns are a fixed set: each is rewritten once per process, not on every request (the
    # request context and telemetry both ask for it).
    route = _named_groups_as_placeholders(route)
    route = route.replace("^", "").replace("\\Z", "").replace("$", "")
    return "/" + route.lstrip("/")


def _evaluated(value):
    """The object behind a lazy `request.user`, or None when nobody has evaluated it yet.

    Evaluating it here would cost a session and a user query the view may not need.
    """
    wrapped = getattr(value, "_wrapped", value)
    if wrapped is empty:
        return None
    return wrapped


def request_identity(request):
    """(user id, organization id) of the request as far as they are known, without any query.

    The organization comes from the API key (`request.auth.organization_id`, set by DRF
    authentication) or from a staff user's organization when the user model has one.
    """
    user = _evaluated(request.__dict__.get("user"))
    user_id = None
    if user is not None and getattr(user, "is_authenticated", False):
        user_id = getattr(user, "pk", None)
    organization_id = getattr(request.__dict__.get("auth"), "organization_id", None)
    if organization_id is None and user is not None:
        organization_id = getattr(user, "organization_id", None)
    return user_id, organization_id


class QueryStats:
    """Queries of one request: count, total time and time per distinct statement."""

    __slots__ = ("count", "seconds", "statements")

    def __init__(self):
        self.count = 0
        self.seconds = 0.0
        # SQL with placeholders (never parameter values) -> [executions, seconds]
        self.statements = {}

    def add(self, sql, seconds):
        self.count += 1
        self.seconds += seconds
        entry = self.statements.get(sql)
        if entry is None:
            if len(self.statements) >= MAX_DISTINCT_STATEMENTS:
                return
            entry = self.statements[sql] = [0, 0.0]
        entry[0] += 1
        entry[1] += seconds


class RequestState:
    """Everything the request context knows about one request; mutated as the request goes on."""

    __slots__ = (
        *("_route", "_when_finished", "duration_ms", "exception", "method", "profiler_depth"),
        *("profiler_queries", "profiler_seconds", "queries", "request", "request_id", "slow"),
        *("started", "started_at"),
    )

    def __init__(self, request, request_id):
        self.request = request
        self.request_id = request_id
        self.method = request.method
        self._route = None
        self.started_at = time.time()
        self.started = time.perf_counter()
        self.queries = QueryStats()
        # How many profiler_work() blocks are open, the queries run and the time spent in them:
        # not the request's.
        self.profiler_depth = 0
        self.profiler_queries = 0
        self.profiler_seconds = 0.0
        self.exception = None
        self.duration_ms = None
        self.slow = False
        self._when_finished = None

    @property
    def route(self):
        """The route template (`route_template`) once URLs are resolved, else None."""
        route = self._route
        if route is None:
            # Django resolves the URL once, inside the middleware; the route is read from it when
            # a line or a tag first asks, not by a process_view hook on every request.
            resolver_match = self.request.resolver_match
            if resolver_match is not None:
                route = self._route = route_template(resolver_match)
        return route

    @property
    def route_label(self):
        """`route_label` of the request, from the route it has looked up once."""
        return label_of_route(self.route)

    def finish(self):
        """Stop the request's clock, once: when the response leaves the outermost middleware
        that keeps the request context. Its duration and slowness are read from here by all;
        then what waits for them (`when_finished`) runs."""
        if self.duration_ms is None:
            elapsed = time.perf_counter() - self.started - self.profiler_seconds
            self.duration_ms = elapsed * 1000
            self.slow = self.duration_ms >= settings.LOG_SLOW_REQUEST_MS
            waiting, self._when_finished = self._when_finished, None
            if waiting is not None:
                for callback, args in waiting:
                    callback(*args)

    def when_finished(self, callback, *args):
        """Call `callback(*args)` once the clock has stopped (`finish`), at once if it has: a
        middleware inside the outermost one reads the request's final duration there. The
        callback must not raise (it runs as the response leaves that middleware)."""
        if self.duration_ms is not None:
            callback(*args)
        elif self._when_finished is None:
            self._when_finished = [(callback, args)]
        else:
            self._when_finished.append((callback, args))


def enter_request(request, request_id):
    """Make `request` the current one; returns what `exit_request` needs to undo it."""
    state = RequestState(request, request_id)
    return state, request_state_var.set(state)


def exit_request(token):
    request_state_var.reset(token)


@contextlib.contextmanager
def profiler_work():
    """A profiler's own work while it records the current request (silk saving its rows, explaining
    a query): its queries are not counted and its time is taken off the request's duration.

    Blocks nest: only the outermost is timed. Does nothing outside a request.
    """
    state = request_state_var.get()
    if state is None:
        yield
        return
    state.profiler_depth += 1
    started = time.perf_counter() if state.profiler_depth == 1 else None
    try:
        yield
    finally:
        state.profiler_depth -= 1
        if started is not None:
            state.profiler_seconds += time.perf_counter() - started


@contextlib.contextmanager
def request_work():
    """The request's own work again inside one `profiler_work()`: the query a profiler wraps.

    Inside nested profiler work (silk saving its rows through its own query wrapper) the query is
    still the profiler's.
    """
    state = request_state_var.get()
    if state is None or state.profiler_depth != 1:
        yield
        return
    state.profiler_depth = 0
    started = time.perf_counter()
    try:
        yield
    finally:
        state.profiler_depth = 1
        state.profiler_seconds -= time.perf_counter() - started


def count_query(execute, sql, params, many, context):
    """Execute wrapper: counts and times each query of the current request (no-op outside one and
    in a profiler's own work)."""
    state = request_state_var.get()
    if state is None:
        return execute(sql, params, many, context)
    if state.profiler_depth:
        state.profiler_queries += 1
        return execute(sql, params, many, context)
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        state.queries.add(sql, time.perf_counter() - started)


def _remember_exception(sender, request=None, **kwargs):
    """got_request_exception: Django sends it for an unhandled exception, in its `except` block.

    The exception is kept for the access line (its traceback) and telemetry (its error group).
    """
    state = request_state_var.get()
    if state is not None and state.request is request:
        state.exception = sys.exc_info()[1]


def install():
    """Count queries on every database connection of the process and keep unhandled exceptions.

    The wrapper costs a context variable lookup outside requests. Idempotent: every middleware
    that reads the request state calls it.
    """
    install_execute_wrapper(count_query, dispatch_uid="observability-query-counter")
    got_request_exception.connect(
        _remember_exception, weak=False, dispatch_uid="observability-request-exception"
    )
