"""TelemetryMiddleware: measures every request and hands it to the in-process aggregator.

Duration, status, route template, query count and time in the database. Queries are counted once
per request, by the request context (apps/common/request_context.py: an execute wrapper
on every connection), and so is the exception that turned a request into a 500; telemetry reads
them there. Without RequestContextMiddleware in front of it, it enters the request context
itself. Nothing here does I/O; the flusher writes. The request is measured on its way out and
added to the aggregator once the response has been sent (apps/observability/after_response.py).
Probe, metrics, stats, static and silk paths are not counted. A failure here is logged and
counted, and the response goes out unchanged.
"""

import time

from django.conf import settings

from apps.common import flusher, request_context
from apps.common.request_context import request_identity
from apps.observability.after_response import call_after_response
from apps.observability.logging.formatting import get_logger
from apps.observability.metrics import registry as metrics
from apps.observability.telemetry import aggregation as telemetry

logger = get_logger(__name__)

EXEMPT_PATHS = frozenset({"/health", "/ready", "/health-detailed", "/metrics", "/stats"})


def exempt_prefixes():
    return tuple(
        prefix for prefix in (settings.STATIC_URL, "/silk/") if prefix and prefix.startswith("/")
    )


class TelemetryMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.slow_ms = settings.LOG_SLOW_REQUEST_MS
        self.exempt_prefixes = exempt_prefixes()
        request_context.install()

    def __call__(self, request):
        path = request.path_info
        if path.rstrip("/") in EXEMPT_PATHS or path.startswith(self.exempt_prefixes):
            return self.get_response(request)
        state = request_context.current_request_state()
        token = None
        if state is None or state.request is not request:
            request_id = request_context.request_id_from_header(
                request.META.get(request_context.REQUEST_ID_META_KEY)
            )
            state, token = request_context.enter_request(request, request_id)
        queries = state.queries
        # Only the queries inside this middleware: not those of silk's recording around it.
        count_before, seconds_before = queries.count, queries.seconds
        started_at = time.time()
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            duration_ms = (time.perf_counter() - started) * 1000
            if token is not None:
                request_context.exit_request(token)
        try:
            call_after_response(
                response,
                "telemetry",
                self.record_safely,
                request,
                response,
                state,
                started_at,
                duration_ms,
                queries.count - count_before,
                (queries.seconds - seconds_before) * 1000,
            )
        except Exception:
            metrics.TELEMETRY_RECORD_FAILURES.inc()
            logger.exception("telemetry_record_failed", path=path)
        return response

    def record_safely(
        self, request, response, state, started_at, duration_ms, query_count, db_time_ms
    ):
        try:
            flusher.ensure_started()
            self.record(
                request,
                response,
                state,
                started_at=started_at,
                duration_ms=duration_ms,
                query_count=query_count,
                db_time_ms=db_time_ms,
            )
        except Exception:
            metrics.TELEMETRY_RECORD_FAILURES.inc()
            logger.exception("telemetry_record_failed", path=request.path_info)

    def record(self, request, response, state, *, started_at, duration_ms, query_count, db_time_ms):
        match = getattr(request, "resolver_match", None)
        route = telemetry.route_label(match)
        status = response.status_code
        slow = duration_ms >= self.slow_ms
        telemetry.record_request(
            route=route,
            method=request.method,
            status=status,
            duration_ms=duration_ms,
            query_count=query_count,
            db_time_ms=db_time_ms,
            slow=slow,
            started_at=started_at,
        )
        if slow:
            method = telemetry.normalise_method(request.method)
            user_id, organization_id = request_identity(request)
            metrics.SLOW_REQUESTS.labels(route, method).inc()
            telemetry.record_slow_request(
                telemetry.SlowRequestSample(
                    started_at=started_at,
                    method=method,
                    route=route,
                    path=request.path,
                    status=status,
                    duration_ms=duration_ms,
                    query_count=query_count,
                    db_time_ms=db_time_ms,
                    request_id=state.request_id,
                    user_id=user_id,
                    organization_id=organization_id,
                )
            )
        if status >= 500 and state.exception is not None:
            telemetry.record_error(
                state.exception,
                route=route,
                method=request.method,
                request_id=state.request_id,
                at=started_at,
            )
