"""TelemetryMiddleware: measures every request and hands it to the in-process aggregator.

Duration, status, route template, query count and time in the database (an execute wrapper on
every database alias for the length of the request). Nothing here does I/O; the flusher writes.
Probe, metrics, stats, static and silk paths are not counted. A failure here is logged and
counted, and the response goes out unchanged.
"""

import sys
import time

from django.conf import settings
from django.core.signals import got_request_exception
from django.db import connections

from apps.observability import flusher, metrics, telemetry
from apps.observability.logging import get_logger
from apps.observability.request_context import current_request_id, request_identity

logger = get_logger(__name__)

EXEMPT_PATHS = frozenset({"/health", "/ready", "/health-detailed", "/metrics", "/stats"})
EXCEPTION_ATTRIBUTE = "telemetry_exception"


def exempt_prefixes():
    return tuple(
        prefix for prefix in (settings.STATIC_URL, "/silk/") if prefix and prefix.startswith("/")
    )


def remember_exception(sender, request=None, **kwargs):
    """got_request_exception: keep the exception that turned into a 500, for its error group."""
    if request is None:
        return
    setattr(request, EXCEPTION_ATTRIBUTE, sys.exc_info()[1])


class QueryTimer:
    """An execute wrapper counting the queries of one request and the time they take."""

    __slots__ = ("count", "seconds")

    def __init__(self):
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.count += 1


class TelemetryMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.slow_ms = settings.LOG_SLOW_REQUEST_MS
        self.exempt_prefixes = exempt_prefixes()
        got_request_exception.connect(
            remember_exception, weak=False, dispatch_uid="apps.observability.telemetry"
        )

    def __call__(self, request):
        path = request.path_info
        if path.rstrip("/") in EXEMPT_PATHS or path.startswith(self.exempt_prefixes):
            return self.get_response(request)
        timer = QueryTimer()
        wrapped = [connections[alias] for alias in connections]
        for connection in wrapped:
            connection.execute_wrappers.append(timer)
        started_at = time.time()
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            duration_ms = (time.perf_counter() - started) * 1000
            for connection in wrapped:
                connection.execute_wrappers.remove(timer)
        try:
            flusher.ensure_started()
            self.record(request, response, started_at, duration_ms, timer)
        except Exception:
            metrics.TELEMETRY_RECORD_FAILURES.inc()
            logger.exception("telemetry_record_failed", path=path)
        return response

    def record(self, request, response, started_at, duration_ms, timer):
        match = getattr(request, "resolver_match", None)
        route = telemetry.route_label(match)
        status = response.status_code
        db_time_ms = timer.seconds * 1000
        slow = duration_ms >= self.slow_ms
        telemetry.record_request(
            route=route,
            method=request.method,
            status=status,
            duration_ms=duration_ms,
            query_count=timer.count,
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
                    query_count=timer.count,
                    db_time_ms=db_time_ms,
                    request_id=current_request_id() or "",
                    user_id=user_id,
                    organization_id=organization_id,
                )
            )
        exception = getattr(request, EXCEPTION_ATTRIBUTE, None)
        if status >= 500 and exception is not None:
            telemetry.record_error(
                exception,
                route=route,
                method=request.method,
                request_id=current_request_id() or "",
                at=started_at,
            )
