"""Who may read the ops endpoints: /health-detailed, /stats and /metrics.

A staff session (someone looking from the admin) or `Authorization: Bearer <METRICS_TOKEN>`
(Prometheus, scripts). Without either the answer is 401; a signed-in user who is not staff gets
403, both in the API's error shape. The token comparison takes constant time. An unset
METRICS_TOKEN accepts no token at all.
"""

import functools
import hmac

from django.conf import settings

from apps.api.errors import json_error_response


def bearer_token(request):
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def has_valid_token(request):
    expected = settings.METRICS_TOKEN
    token = bearer_token(request)
    if not expected or token is None:
        return False
    return hmac.compare_digest(token.encode(), expected.encode())


def is_staff(request):
    user = getattr(request, "user", None)
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


def access_denied(request):
    """None when the request may read ops data, else the 401 or 403 response to send."""
    if is_staff(request) or has_valid_token(request):
        return None
    user = getattr(request, "user", None)
    if bearer_token(request) is None and user is not None and user.is_authenticated:
        return json_error_response(
            "forbidden", "Staff access or the metrics token is required.", 403
        )
    response = json_error_response(
        "unauthorized", "Sign in as staff or send 'Authorization: Bearer <METRICS_TOKEN>'.", 401
    )
    response["WWW-Authenticate"] = 'Bearer realm="ops"'
    return response


def staff_or_token_required(view):
    """Decorator: the view runs for staff sessions and holders of the metrics token."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        denied = access_denied(request)
        if denied is not None:
            return denied
        return view(request, *args, **kwargs)

    return wrapper
