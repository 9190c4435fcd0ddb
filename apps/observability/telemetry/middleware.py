"""TelemetryMiddleware: hands every request to the in-process aggregator.

Status, route template, query count and time in the database, and the duration and slowness the
request context decided once for the request (RequestState.finish: the same figures the access
line and the slow-request counter read). Queries are counted once per request by the request
context (apps/common/request_context.py: an execute wrapper on every connection, which leaves out
silk's own queries), and so is the exception that turned a request into a 500; telemetry reads
them there, the same figures as the access line. The request is added to the aggregator when the
request context stops its clock (`RequestState.when_finished`: RequestContextMiddleware, outside
this one, does as the response leaves it); without RequestContextMiddleware in front of it, it
enters the request context and finishes it itself. Nothing here does I/O: the background flusher
writes the aggregation. The ops paths (apps/common/paths.py) are not counted. A failure here is
logged and counted, and the response goes out unchanged.
"""

import structlog

from apps.common import flusher, request_context
from apps.common.paths import is_ops_path
from apps.common.request_context import request_identity
from apps.observability.metrics import registry as metrics
from apps.observability.telemetry import aggregation as telemetry
from apps.observability.telemetry.rows import SlowRequestSample

logger = structlog.get_logger(__name__)


class TelemetryMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        request_context.install()

    def __call__(self, request):
        path = request.path_info
        if is_ops_path(path):
            return self.get_response(request)
        state = request_context.current_request_state()
        token = None
        if state is None or state.request is not request:
            request_id = request_context.request_id_from_header(
                request.META.get(request_context.REQUEST_ID_META_KEY)
            )
            state, token = request_context.enter_request(request, request_id)
        queries = state.queries
        try:
            response = self.get_response(request)
            state.when_finished(
                self.record_safely,
                request,
                response,
                state,
                queries.count,
                queries.seconds * 1000,
            )
            if token is not None:
                state.finish()
        finally:
            if token is not None:
                request_context.exit_request(token)
        return response

    def record_safely(self, request, response, state, query_count, db_time_ms):
        try:
            flusher.ensure_started()
            self.record(request, response, state, query_count=query_count, db_time_ms=db_time_ms)
        except Exception:
            metrics.TELEMETRY_RECORD_FAILURES.inc()
            logger.exception("telemetry_record_failed", path=request.path_info)

    def record(self, request, response, state, *, query_count, db_time_ms):
        route = state.route_label
        status = response.status_code
        duration_ms, slow, started_at = state.duration_ms, state.slow, state.started_at
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
                SlowRequestSample(
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
