"""Limits on guessing credentials: admin logins (django-axes) and API keys, per client address.

django-axes locks the admin login per username and per address after AXES_FAILURE_LIMIT
failures (project/settings.py); this module gives it the client's address, its lockout response
(429 with Retry-After) and the receiver that logs and counts each lockout. Failed API key attempts
are counted per address in a fixed window of the shared cache (API_KEY_FAILURE_RATE); beyond it
the address gets 429 until the window ends (apps.tenants.authentication).

A lockout is logged and counted once, when it starts, not for every attempt it refuses:
orders_lockouts_total{kind="admin_login"|"api_key"}.
"""

import logging

from django.conf import settings
from django.http import HttpResponse
from prometheus_client import Counter

from apps.tenants.rate_limits import FixedWindow, Rate

logger = logging.getLogger(__name__)

LOCKOUTS = Counter(
    "orders_lockouts_total",
    "Lockouts after repeated failed credentials: admin logins (per username or address) and API "
    "key attempts (per address).",
    ["kind"],
)
ADMIN_LOGIN = "admin_login"
API_KEY = "api_key"
# Exported at 0 from the start, so that increase() sees a first lockout.
for _kind in (ADMIN_LOGIN, API_KEY):
    LOCKOUTS.labels(_kind)


def client_address(request):
    """The client's address: REMOTE_ADDR, or behind DJANGO_TRUSTED_PROXY_COUNT proxies the entry
    of X-Forwarded-For the outermost of them appended (entries further left are the client's
    say, which it can forge)."""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = [
            entry.strip()
            for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if entry.strip()
        ]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def admin_login_lockout_response(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: axes' own plain 429, with Retry-After."""
    cool_off_seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    response = HttpResponse(
        f"Too many failed logins. Try again in {cool_off_seconds // 60} minute(s).",
        status=429,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = str(cool_off_seconds)
    return response


def record_admin_login_lockout(sender, request, username, ip_address, **kwargs):
    """Receiver of axes' user_locked_out, which it sends for every failure from the limit on:
    only the failure that reaches the limit starts a lockout."""
    if getattr(request, "axes_failures_since_start", None) != settings.AXES_FAILURE_LIMIT:
        return
    LOCKOUTS.labels(ADMIN_LOGIN).inc()
    logger.warning(
        "admin login locked out after %d failures: username %r, address %s, for %s",
        settings.AXES_FAILURE_LIMIT,
        username,
        ip_address,
        settings.AXES_COOLOFF_TIME,
    )


class APIKeyFailures:
    """Failed API key attempts of one client address in the current window."""

    def __init__(self, request):
        self.address = client_address(request)
        self.window = FixedWindow(
            f"api_key_failures:{self.address}", Rate.parse(settings.API_KEY_FAILURE_RATE)
        )

    def locked_out(self):
        return self.window.count() >= self.window.rate.limit

    def seconds_left(self):
        return self.window.seconds_left()

    def record(self):
        if self.window.hit() != self.window.rate.limit:
            return
        LOCKOUTS.labels(API_KEY).inc()
        logger.warning(
            "API key attempts locked out after %d failures: address %s, for %d s",
            self.window.rate.limit,
            self.address,
            self.window.seconds_left(),
        )
