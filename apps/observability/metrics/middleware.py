"""django-prometheus' request middleware, kept to the request metrics ops read.

django-prometheus' own pair of middleware updates 17 series per request: under gunicorn each
update is a write to a multiprocess mmap file under a lock, and each of its 7 `labels()` lookups
checks and sorts the label names under another lock (about 130 us per request on a trivial view,
bench/README.md). These two keep, with the same names and PROMETHEUS_LATENCY_BUCKETS:

- django_http_requests_before_middlewares_total, django_http_responses_before_middlewares_total:
  requests in and out of the whole stack (their difference is the requests in flight);
- django_http_requests_latency_including_middlewares_seconds: latency of the whole stack;
- django_http_requests_latency_seconds_by_view_method: latency by view and method;
- django_http_responses_total_by_status and ..._by_status_view_method: responses;
- django_http_exceptions_total_by_type and ..._by_view: unhandled exceptions.

The `view` label is the URL pattern's name, or `<unmatched>` (apps/common/request_context.py)
for paths that no pattern but a catch-all matched, as in the logs and telemetry.

Dropped: requests by method, by transport and by view/transport/method (the responses by
status, view and method count the same requests), AJAX requests, request and response body
size histograms, responses by template name, charset and streaming, and the "unknown latency"
counters (never incremented: both middleware stamp every request they see).

The label children of a (view, method, status) are looked up once per process and kept. The
latency by view is observed once per request, also when the view raised (django-prometheus
observes such a request twice: in process_exception and again for the 500 response). Requests
are counted as they come in; responses and latencies are measured as they go out. Under
gunicorn these updates are kept in the process and written to the multiprocess files by the
background flusher, each series once per cycle (metrics/pending.py).
"""

import time

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django_prometheus import middleware
from django_prometheus.conf import NAMESPACE, PROMETHEUS_LATENCY_BUCKETS
from prometheus_client import Counter, Histogram

from apps.common.request_context import UNMATCHED_ROUTE, route_template
from apps.observability.metrics.pending import request_updates


class RequestMetrics(middleware.Metrics):
    """The request metrics the project exports (one instance per process)."""

    # Not inherited: django-prometheus' Metrics keeps its own (full) instance there.
    _instance = None

    def register(self):
        self.requests_total = self.register_metric(
            Counter,
            "django_http_requests_before_middlewares_total",
            "Total count of requests before middlewares run.",
            namespace=NAMESPACE,
        )
        self.responses_total = self.register_metric(
            Counter,
            "django_http_responses_before_middlewares_total",
            "Total count of responses before middlewares run.",
            namespace=NAMESPACE,
        )
        self.requests_latency_before = self.register_metric(
            Histogram,
            "django_http_requests_latency_including_middlewares_seconds",
            "Histogram of requests processing time (including middleware processing time).",
            buckets=PROMETHEUS_LATENCY_BUCKETS,
            namespace=NAMESPACE,
        )
        self.requests_latency_by_view_method = self.register_metric(
            Histogram,
            "django_http_requests_latency_seconds_by_view_method",
            "Histogram of request processing time labelled by view.",
            ["view", "method"],
            buckets=PROMETHEUS_LATENCY_BUCKETS,
            namespace=NAMESPACE,
        )
        self.responses_by_status = self.register_metric(
            Counter,
            "django_http_responses_total_by_status",
            "Count of responses by status.",
            ["status"],
            namespace=NAMESPACE,
        )
        self.responses_by_status_view_method = self.register_metric(
            Counter,
            "django_http_responses_total_by_status_view_method",
            "Count of responses by status, view, method.",
            ["status", "view", "method"],
            namespace=NAMESPACE,
        )
        self.exceptions_by_type = self.register_metric(
            Counter,
            "django_http_exceptions_total_by_type",
            "Count of exceptions by object type.",
            ["type"],
            namespace=NAMESPACE,
        )
        self.exceptions_by_view = self.register_metric(
            Counter,
            "django_http_exceptions_total_by_view",
            "Count of exceptions by view.",
            ["view"],
            namespace=NAMESPACE,
        )
        # (view, method, status code) -> the three label children a response updates. Bounded by
        # the URL patterns x 10 methods x the status codes the views answer, as the children
        # prometheus-client keeps anyway.
        self._response_series = {}

    def response_series(self, view, method, status_code):
        """(responses by status, by status/view/method, latency by view/method) children."""
        key = (view, method, status_code)
        series = self._response_series.get(key)
        if series is None:
            status = str(status_code)
            series = (
                self.responses_by_status.labels(status),
                self.responses_by_status_view_method.labels(status, view, method),
                self.requests_latency_by_view_method.labels(view, method),
            )
            self._response_series[key] = series
        return series


# django-prometheus' method label: anything else is one label, not one per spelling.
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "CONNECT", "PATCH"}
)


def method_label(method):
    return method if method in KNOWN_METHODS else "<invalid method>"


def view_label(request):
    # Paths no URL pattern matched, or only a catch-all: the one label the logs and telemetry
    # use, not django-prometheus' "<unnamed view>" or the catch-all's name.
    resolver_match = getattr(request, "resolver_match", None)
    route = route_template(resolver_match)
    if route is None or route == UNMATCHED_ROUTE:
        return UNMATCHED_ROUTE
    return resolver_match.view_name


class PrometheusMiddleware:
    """A plain middleware (sync and async) timing the rest of the stack: what django-prometheus'
    MiddlewareMixin-based pair does through process_request and process_response, without their
    hook dispatch and time wrappers on every request. `finished` records the response."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.metrics = RequestMetrics.get_instance()
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        started = time.perf_counter()
        response = self.get_response(request)
        self.finished(request, response, time.perf_counter() - started)
        return response

    async def __acall__(self, request):
        started = time.perf_counter()
        response = await self.get_response(request)
        self.finished(request, response, time.perf_counter() - started)
        return response


class PrometheusBeforeMiddleware(PrometheusMiddleware):
    """Starts the clock of the whole stack; counts requests in and responses out."""

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        request_updates.add((self.metrics.requests_total, 1))
        return super().__call__(request)

    async def __acall__(self, request):
        request_updates.add((self.metrics.requests_total, 1))
        return await super().__acall__(request)

    def finished(self, request, response, latency):
        request_updates.add(
            (self.metrics.responses_total, 1), (self.metrics.requests_latency_before, latency)
        )


class PrometheusAfterMiddleware(PrometheusMiddleware):
    """Responses by status, view and method, and the view's latency; unhandled exceptions."""

    def finished(self, request, response, latency):
        by_status, by_status_view_method, latency_by_view_method = self.metrics.response_series(
            view_label(request), method_label(request.method), response.status_code
        )
        request_updates.add(
            (by_status, 1), (by_status_view_method, 1), (latency_by_view_method, latency)
        )

    def process_exception(self, request, exception):
        self.metrics.exceptions_by_type.labels(type(exception).__name__).inc()
        self.metrics.exceptions_by_view.labels(view_label(request)).inc()
