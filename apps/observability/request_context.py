"""What is known about the request being served, in context variables.

Context variables are per thread and per asyncio task, so threaded workers and async views each
see their own request. Logging (structlog's merge_contextvars and `add_request_context`),
telemetry and error tracking read them through these functions.

RequestContextMiddleware (apps/observability/request_logging.py) sets them at the start of a
request and resets them at its end.
"""

import contextvars
import functools
import re
import time
import uuid
from collections import defaultdict

from django.db import connections
from django.db.backends.signals import connection_created
from django.utils.functional import empty

request_id_var = contextvars.ContextVar("request_id", default=None)
route_var = contextvars.ContextVar("route", default=None)
# The RequestState of the request being served (None outside one).
request_state_var = contextvars.ContextVar("request_state", default=None)

REQUEST_ID_HEADER = "X-Request-ID"
# The same header in request.META (WSGI and ASGI alike): reading it there spares building
# request.headers, a dict of every header, on each request (~20 us).
REQUEST_ID_META_KEY = "HTTP_X_REQUEST_ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Distinct SQL strings remembered per request for the slow-request summary; beyond this a request
# is still counted and timed, only its further statements are not told apart.
MAX_DISTINCT_STATEMENTS = 200


def current_request_id():
    """The id of the request being served (echoed in X-Request-ID), or None outside one."""
    return request_id_var.get()


def current_route():
    """The URL pattern of the request being served, e.g. /api/v1/orders/<int:pk>/."""
    return route_var.get()


def current_request_state():
    """The RequestState of the request being served, or None outside one."""
    return request_state_var.get()


def request_id_from_header(value):
    """The client's X-Request-ID when it is sane (1-128 of [A-Za-z0-9._-]), else a new uuid4 hex.

    Anything else could forge log lines, blow up their size or carry a secret.
    """
    if value and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


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
    '/orders/<pk>/'. None when nothing matched (a 404).
    """
    route = getattr(resolver_match, "route", None)
    if route is None:
        return None
    return _template_of(route)


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
        self.statements = defaultdict(lambda: [0, 0.0])

    def add(self, sql, seconds):
        self.count += 1
        self.seconds += seconds
        if sql in self.statements or len(self.statements) < MAX_DISTINCT_STATEMENTS:
            entry = self.statements[sql]
            entry[0] += 1
            entry[1] += seconds


class RequestState:
    """Everything the request context knows about one request; mutated as the request goes on."""

    __slots__ = ("exception", "method", "queries", "request", "request_id", "route", "started")

    def __init__(self, request, request_id):
        self.request = request
        self.request_id = request_id
        self.method = request.method
        self.route = None
        self.started = time.perf_counter()
        self.queries = QueryStats()
        self.exception = None


def enter_request(request, request_id):
    """Make `request` the current one; returns what `exit_request` needs to undo it."""
    state = RequestState(request, request_id)
    tokens = (request_state_var.set(state), request_id_var.set(request_id), route_var.set(None))
    return state, tokens


def set_route(state, route):
    state.route = route
    route_var.set(route)


def exit_request(tokens):
    state_token, request_id_token, route_token = tokens
    route_var.reset(route_token)
    request_id_var.reset(request_id_token)
    request_state_var.reset(state_token)


def count_query(execute, sql, params, many, context):
    """Execute wrapper: counts and times each query of the current request (no-op outside one)."""
    state = request_state_var.get()
    if state is None:
        return execute(sql, params, many, context)
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        state.queries.add(sql, time.perf_counter() - started)


def _install_on(connection):
    # Inserted first (outermost): others push and pop their wrappers at the end of the list with
    # `connection.execute_wrapper()`, which an append in the middle of their block would break.
    if count_query not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, count_query)


def _on_connection_created(sender, connection, **kwargs):
    _install_on(connection)


def install_query_counter():
    """Count queries on every database connection of the process, from now on.

    New connections (any thread, any alias) get the wrapper when they connect; connections this
    thread already opened get it now. The wrapper costs a context variable lookup outside requests.
    """
    connection_created.connect(
        _on_connection_created, weak=False, dispatch_uid="observability-query-counter"
    )
    for connection in connections.all(initialized_only=True):
        _install_on(connection)
