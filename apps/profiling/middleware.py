"""QueryInspectorMiddleware: the query inspector on a sample of live traffic.

NPLUSONE_SAMPLE_RATE of the requests (outside the ops paths of apps/common/paths.py) run as a unit
of work (apps/profiling/inspector.py); their findings go to the in-process buffer
(apps/profiling/findings.py) with the route template, the request id and, when silk recorded the
same request, silk's id, and the background flusher writes them. An unsampled request costs one
random() and a comparison; with a rate of 0 the middleware is not installed at all. A failure
here is logged and counted, and the response goes out unchanged.
"""

import random

import structlog
from django.apps import apps
from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed

from apps.common import flusher
from apps.common.paths import is_ops_path
from apps.common.request_context import current_request_id, route_label
from apps.profiling import findings, metrics
from apps.profiling.callsite import pass_through
from apps.profiling.inspector import Unit, active_unit

logger = structlog.get_logger(__name__)


def _no_silk_request_id():
    return ""


class QueryInspectorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.rate = settings.NPLUSONE_SAMPLE_RATE
        if self.rate <= 0:
            raise MiddlewareNotUsed("NPLUSONE_SAMPLE_RATE is 0")
        if apps.is_installed("silk"):
            from apps.profiling.silk import recorded_request_id

            self.silk_request_id = recorded_request_id
        else:
            self.silk_request_id = _no_silk_request_id

    @pass_through
    def __call__(self, request):
        sampled = random.random() < self.rate  # noqa: S311 - sampling, not security
        if not sampled or is_ops_path(request.path_info):
            return self.get_response(request)
        # inspector.unit_of_work, spelled out so that not even the report can fail the request.
        unit = Unit()
        token = active_unit.set(unit)
        try:
            response = self.get_response(request)
        finally:
            active_unit.reset(token)
        try:
            report = unit.report()
            if report.all_findings:
                self.record(request, report)
        except Exception:
            metrics.FINDINGS_RECORD_FAILURES.inc()
            logger.exception("query_findings_record_failed", path=request.path_info)
        return response

    def record(self, request, report):
        route = route_label(getattr(request, "resolver_match", None))
        flusher.ensure_started()
        findings.record_findings(
            report,
            source=route,
            request_id=current_request_id() or "",
            silk_request_id=self.silk_request_id(),
        )
