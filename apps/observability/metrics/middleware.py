"""django-prometheus' request middleware, kept to the request metrics ops read.

django-prometheus' own pair of middleware updates 17 series per request: under gunicorn each
update is a write to a multiprocess mmap file under a lock, and each of its 7 `labels()` lookups
checks and sorts the label names under another lock (about 130 us per request on a trivial view,
bench/README.md). These subclasses keep, with the same names and PROMETHEUS_LATENCY_BUCKETS:

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

from django_prometheus import middleware
from django_prometheus.conf import NAMESPACE, PROMETHEUS_LATENCY_BUCKETS
from django_prometheus.utils import Time, TimeSince
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

    def observe_request_in(self):
        request_updates.add((self.requests_total, 1))

    def observe_response_out(self, latency):
        if latency is None:
            request_updates.add((self.responses_total, 1))
        else:
            request_updates.add((self.responses_total, 1), (self.requests_latency_before, latency))


def observe_response(series, latency):
    by_status, by_status_view_method, latency_by_view_method = series
    if latency is None:
        request_updates.add((by_status, 1), (by_status_view_method, 1))
    else:
        request_updates.add(
            (by_status, 1), (by_status_view_method, 1), (latency_by_view_method, latency)
        )


def time_since(request, attribute):
    started = getattr(request, attribute, None)
    return None if started is None else TimeSince(started)


class PrometheusBeforeMiddleware(middleware.PrometheusBeforeMiddleware):
    """Starts the clock of the whole stack; counts requests in and responses out."""

    metrics_cls = RequestMetrics

    def process_request(self, request):
        self.metrics.observe_request_in()
        request.prometheus_before_middleware_event = Time()

    def process_response(self, request, response):
        self.metrics.observe_response_out(time_since(request, "prometheus_before_middleware_event"))
        return response


class PrometheusAfterMiddleware(middleware.PrometheusAfterMiddleware):
    """Responses by status, view and method, and the view's latency; unhandled exceptions."""

    metrics_cls = RequestMetrics

    def process_request(self, request):
        request.prometheus_after_middleware_event = Time()

    def process_view(self, request, view_func, *view_args, **view_kwargs):
        return None

    def process_template_response(self, request, response):
        return response

    def process_response(self, request, response):
        series = self.metrics.response_series(
            self._get_view_name(request), self._method(request), response.status_code
        )
        observe_response(series, time_since(request, "prometheus_after_middleware_event"))
        return response

    def process_exception(self, request, exception):
        self.metrics.exceptions_by_type.labels(type(exception).__name__).inc()
        self.metrics.exceptions_by_view.labels(self._get_view_name(request)).inc()

    def _get_view_name(self, request):
        # Paths no URL pattern matched, or only a catch-all: the one label the logs and
        # telemetry use, not django-prometheus' "<unnamed view>" or the catch-all's name.
        resolver_match = getattr(request, "resolver_match", None)
        route = route_template(resolver_match)
        if route is None or route == UNMATCHED_ROUTE:
            return UNMATCHED_ROUTE
        return resolver_match.view_name
