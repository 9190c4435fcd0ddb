"""/stats: request statistics of the last minutes, summed over every process, as JSON, for the
metrics token or staff holding observability.view_ops (apps/observability/authorization.py)."""

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from apps.api.errors import BadParameter, json_error_response
from apps.observability.authorization import ops_viewer_or_token_required
from apps.observability.health.process import process_information
from apps.observability.telemetry.statistics import request_statistics

DEFAULT_MINUTES = 60
MAX_MINUTES = 1440


def parse_minutes(value):
    if value is None:
        return DEFAULT_MINUTES
    try:
        minutes = int(value)
    except ValueError:
        raise BadParameter(f"minutes: {value!r} is not a whole number") from None
    if not 1 <= minutes <= MAX_MINUTES:
        raise BadParameter(f"minutes: must be between 1 and {MAX_MINUTES}, got {minutes}")
    return minutes


@never_cache
@require_safe
@ops_viewer_or_token_required
def stats_view(request):
    try:
        minutes = parse_minutes(request.GET.get("minutes"))
    except BadParameter as error:
        return json_error_response("bad_request", str(error), 400, fields=error.fields)
    return JsonResponse({**request_statistics(minutes), "process": process_information()})
