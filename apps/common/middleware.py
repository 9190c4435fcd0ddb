"""Middleware of the whole site that belongs to no app: the Content-Security-Policy header."""

import functools

from csp import middleware as csp_middleware
from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed

POLICY_SETTINGS = ("CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY")
# What django-csp's decorators leave on a response: a policy, or an exemption, of its own.
PER_RESPONSE_ATTRIBUTES = tuple(
    f"_csp_{part}{suffix}"
    for part in ("config", "update", "replace", "exempt")
    for suffix in ("", "_ro")
)
DEBUG_PAGE_STATUSES = (404, 500)


@functools.cache
def site_policy_headers():
    """{header: policy} of the settings' policies, as django-csp builds them with no nonce; None
    when a policy excludes URL prefixes (django-csp then decides per path)."""
    headers = {}
    for name, header, report_only in (
        (POLICY_SETTINGS[0], HEADER, False),
        (POLICY_SETTINGS[1], HEADER_REPORT_ONLY, True),
    ):
        if (getattr(settings, name, None) or {}).get("EXCLUDE_URL_PREFIXES"):
            return None
        policy = build_policy(report_only=report_only)
        if policy:
            headers[header] = policy
    return headers


def _forget_site_policy(setting, **kwargs):
    if setting in POLICY_SETTINGS:
        site_policy_headers.cache_clear()


setting_changed.connect(_forget_site_policy)


class CSPMiddleware(csp_middleware.CSPMiddleware):
    """django-csp's middleware, with the site's policy built once rather than for every response.

    A response whose request used its nonce (a page with inline code), that carries a policy or
    an exemption of its own (django-csp's decorators) or a policy header already, or that is
    Django's debug page, goes through django-csp as before; every other one (the JSON of the API
    and the ops endpoints) gets the same headers django-csp would write.
    """

    def process_response(self, request, response):
        headers = site_policy_headers()
        if (
            headers is None
            or getattr(request, "_csp_nonce", None) is not None
            or any(hasattr(response, attribute) for attribute in PER_RESPONSE_ATTRIBUTES)
            or HEADER in response
            or HEADER_REPORT_ONLY in response
            or (settings.DEBUG and response.status_code in DEBUG_PAGE_STATUSES)
        ):
            return super().process_response(request, response)
        for header, policy in headers.items():
            response[header] = policy
        # As django-csp does: a nonce asked for once the header is written is an error.
        request.csp_nonce = csp_middleware.CheckableLazyObject(self._csp_nonce_post_response)
        return response
