"""Who may read the ops endpoints: /health-detailed, /stats and /metrics.

A session of staff holding `observability.view_ops` (apps/common/ops_access.py: someone looking
from the admin) or `Authorization: Bearer <METRICS_TOKEN>` (Prometheus, scripts). Without either
the answer is 401; a signed-in user without the permission, staff or not, gets 403, both in the
API's error shape. The token comparison takes constant time. An unset METRICS_TOKEN accepts no
token at all.
"""

import functools
import hmac

from django.conf import settings

from apps.api.errors import json_error_response
from apps.common.ops_access import OPS_PERMISSION, may_view_ops


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


def access_denied(request):
    """None when the request may read ops data, else the 401 or 403 response to send."""
    user = getattr(request, "user", None)
    if may_view_ops(user) or has_valid_token(request):
        return None
    if bearer_token(request) is None and user is not None and user.is_authenticated:
        return json_error_response(
            "forbidden",
            f"Staff holding the {OPS_PERMISSION} permission or the metrics token is required.",
            403,
        )
    response = json_error_response(
        "unauthorized",
        f"Sign in as staff holding {OPS_PERMISSION} or send "
        "'Authorization: Bearer <METRICS_TOKEN>'.",
        401,
    )
    response["WWW-Authenticate"] = 'Bearer realm="ops"'
    return response


def ops_viewer_or_token_required(view):
    """Decorator: the view runs for sessions that may view ops and holders of the metrics token."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        denied = access_denied(request)
        if denied is not None:
            return denied
        return view(request, *args, **kwargs)

    return wrapper
