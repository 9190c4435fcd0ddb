"""One JSON error shape for every JSON endpoint: the API and the ops endpoints alike.

    {"error": {"code": "validation_error", "message": "Invalid input.", "fields": {...}}}

`code` is stable and machine-readable, `message` is for a person, `fields` maps field names (or
query parameters) to lists of messages (nested for list items) and is empty when the error
concerns no field. An app may add keys (409s about an order's status add `current_status`).

Django's error handlers (project/urls.py) answer in this shape under /api/, so that no client of
the API ever gets an HTML page, also when a view fails or the database is unreachable (503
`database_unavailable` with Retry-After; elsewhere, the admin say, a plain 503 page).
"""

import sys

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404, HttpResponse, JsonResponse
from django.utils.cache import patch_cache_control
from django.views.decorators.csrf import csrf_exempt
from django.views.defaults import bad_request as default_bad_request
from django.views.defaults import server_error as default_server_error
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from apps.api.exceptions import Conflict, PayloadTooLarge
from apps.common.request_context import answers_unmatched_paths

API_PREFIX = "/api/"
# How long a client should wait before retrying while the database is unreachable: about the
# longest gap between the connection pool's attempts to reconnect.
DATABASE_RETRY_AFTER_SECONDS = 5
DATABASE_UNAVAILABLE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Service unavailable</title></head>
<body><h1>Service unavailable</h1>
<p>The database cannot be reached right now. Try again in a few seconds.</p></body></html>
"""


def error_body(code, message, fields=None, **extra):
    return {"error": {"code": code, "message": message, "fields": fields or {}, **extra}}


class BadParameter(ValueError):
    """A query parameter a person can correct: `name: what is wrong`. Answered with a 400."""

    @property
    def fields(self):
        name, separator, problem = str(self).partition(": ")
        return {name: [problem]} if separator else {}


def _first_message(detail):
    if isinstance(detail, dict):
        for value in detail.values():
            return _first_message(value)
    if isinstance(detail, list):
        for value in detail:
            message = _first_message(value)
            if message:
                return message
        return ""
    return str(detail)


def _api_error(exc):
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        message = _first_message(fields) or "Invalid input."
        return error_body("validation_error", f"Invalid input: {message}", fields)
    detail = exc.detail
    code = exc.default_code
    if isinstance(detail, exceptions.ErrorDetail) and detail.code:
        code = detail.code
    if isinstance(detail, (dict, list)):
        return error_body(code, _first_message(detail) or str(exc.default_detail))
    return error_body(code, str(detail))


def exception_handler(exc, context):
    """DRF's handler (status, WWW-Authenticate, Retry-After) with the bodies reshaped."""
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, ProtectedError):
        exc = Conflict(f"It cannot be deleted: {len(exc.protected_objects)} order(s) refer to it.")
    elif isinstance(exc, RestrictedError):
        exc = Conflict(f"It cannot be deleted: {len(exc.restricted_objects)} row(s) refer to it.")
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    response.data = _api_error(exc if isinstance(exc, exceptions.APIException) else _wrap(exc))
    return response


def _wrap(exc):
    # DRF turned Http404/PermissionDenied into its own exceptions; rebuild them for the body.
    if isinstance(exc, Http404):
        return exceptions.NotFound(str(exc) or None)
    if isinstance(exc, PermissionDenied):
        return exceptions.PermissionDenied()
    return exceptions.APIException()


def json_error_response(code, message, status_code, fields=None, **extra):
    """The error shape outside DRF views (ops endpoints, handlers), never stored by caches."""
    response = JsonResponse(error_body(code, message, fields, **extra), status=status_code)
    patch_cache_control(response, no_store=True)
    return response


def conflict_response(code, message, **extra):
    """A 409 in the error shape from a DRF exception handler, rolling back the transaction."""
    set_rollback()
    return Response(error_body(code, message, **extra), status=status.HTTP_409_CONFLICT)


@answers_unmatched_paths
@csrf_exempt
def api_not_found(request, *args, **kwargs):
    """Unknown /api/ URLs answer in the API's shape, not with an HTML page (nor a CSRF 403:
    the API has no cookies to protect)."""
    return json_error_response("not_found", f"No API endpoint at {request.path}.", 404)


def bad_request(request, exception=None):
    """handler400: a too-large body read outside a DRF view still answers a JSON 413."""
    if isinstance(exception, RequestDataTooBig):
        return json_error_response("payload_too_large", "The request body is too large.", 413)
    if request.path.startswith(API_PREFIX):
        return json_error_response("bad_request", "The request could not be understood.", 400)
    return default_bad_request(request, exception)


def server_error(request):
    """handler500: a 503 with Retry-After while the database is unreachable (JSON under /api/,
    a plain page elsewhere: the admin's own templates would query the database again); other
    failures a JSON 500 under /api/ and Django's page elsewhere. The exception has been logged
    (and sent to Sentry) by then; the body says nothing about it."""
    # Django calls the handler inside the `except` block of the exception being answered.
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        if request.path.startswith(API_PREFIX):
            response = json_error_response(
                "database_unavailable", "The database is unavailable; retry later.", 503
            )
        else:
            response = HttpResponse(DATABASE_UNAVAILABLE_PAGE, status=503)
            patch_cache_control(response, no_store=True)
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        return response
    if not request.path.startswith(API_PREFIX):
        return default_server_error(request)
    return json_error_response(
        "server_error",
        "The server failed to answer; quote the X-Request-ID header when reporting it.",
        500,
    )


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable error code.")
    message = serializers.CharField(help_text="What went wrong, for a person.")
    fields = serializers.DictField(
        child=serializers.JSONField(),
        help_text="Field name → list of messages (nested for list items); empty if none.",
    )
    current_status = serializers.CharField(
        required=False, help_text="The order's status, on 409 invalid_transition."
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()

    class Meta:
        ref_name = "Error"


ERROR_DESCRIPTIONS = {
    400: "Invalid input: malformed JSON, a field error, an invalid filter or cursor.",
    401: "Missing, invalid, expired or revoked API key (`WWW-Authenticate: Bearer`).",
    404: "Not found, or it belongs to another organization.",
    405: "Method not allowed.",
    406: "The Accept header asks for something other than JSON.",
    409: "Conflict with the current state (status, stock, or still referenced).",
    413: "The request body is larger than DJANGO_MAX_BODY_BYTES.",
    415: "The body is not JSON.",
    422: "The Idempotency-Key was used before with a different body.",
    429: "Too many requests for this API key; see `Retry-After`.",
}
COMMON_ERRORS = (400, 401, 405, 406, 413, 415, 429)


def error_responses(*status_codes):
    """extend_schema responses for the given error statuses plus the ones any request can get."""
    codes = sorted(set(COMMON_ERRORS) | set(status_codes))
    return {
        code: OpenApiResponse(response=ErrorSerializer, description=ERROR_DESCRIPTIONS[code])
        for code in codes
    }
