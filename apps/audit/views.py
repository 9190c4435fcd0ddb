"""/admin/ops/audit/: the scaling audit run now, as the command writes it, for ops staff.

The window picker of the ops pages is the audit's window; ?fail_on= and ?instances= are the
command's options. The page links the same report as a Markdown download.
"""

from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpResponse

from apps.api.errors import BadParameter, json_error_response
from apps.audit import rendering
from apps.audit.report import CRITICAL, FAIL_ON_CHOICES, GAPS, GATE, SECTION_TITLES, SECTIONS
from apps.audit.selectors import last_run
from apps.audit.services import AuditCannotRun, run_audit
from apps.observability.ops import queries as ops_queries
from apps.observability.ops.views import ops_page, staff_page


def _audit_parameters(query):
    fail_on = query.get("fail_on") or CRITICAL
    if fail_on not in FAIL_ON_CHOICES:
        raise BadParameter(f"fail_on: {fail_on!r} is not one of {', '.join(FAIL_ON_CHOICES)}")
    instances = query.get("instances") or str(settings.SCALING_INSTANCES)
    if not instances.isdigit() or int(instances) < 1:
        raise BadParameter(f"instances: {instances!r} is not a whole number of at least 1")
    return {"fail_on": fail_on, "instances": instances}


def _minutes(window):
    return int(window.duration.total_seconds() // 60)


@ops_page("audit/report.html", parameters=_audit_parameters)
def report_page(request, window, refresh, fail_on, instances):
    try:
        report = run_audit(_minutes(window), int(instances), fail_on)
    except AuditCannotRun as error:
        return "Scaling audit", {"cannot_run": str(error), "last_run": None}
    sections = [
        {
            "key": key,
            "title": SECTION_TITLES[key],
            "findings": report.section(key),
        }
        for key in SECTIONS
        if key != GATE
    ]
    return "Scaling audit", {
        "report": report,
        "sections": sections,
        "gaps_key": GAPS,
        "checklist": report.checklist(),
        "gate_title": SECTION_TITLES[GATE],
        "counts": report.counts(),
        "last_run": last_run(),
        "markdown_query": "?"
        + urlencode({"window": window.key, "fail_on": fail_on, "instances": instances}),
    }


@staff_page
def markdown_download(request):
    try:
        window = ops_queries.parse_window(request.GET.get("window"))
        parameters = _audit_parameters(request.GET)
    except BadParameter as error:
        return json_error_response("bad_request", str(error), 400, fields=error.fields)
    try:
        report = run_audit(_minutes(window), int(parameters["instances"]), parameters["fail_on"])
    except AuditCannotRun as error:
        return json_error_response("audit_cannot_run", str(error), 503)
    response = HttpResponse(
        rendering.as_markdown(report), content_type="text/markdown; charset=utf-8"
    )
    stamp = report.scope.now.strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="scaling-audit-{stamp}.md"'
    return response
