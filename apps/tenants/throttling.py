"""API_THROTTLE_RATE requests per API key, counted atomically in the shared cache.

DRF's SimpleRateThrottle keeps a list of request times per key and writes it back after reading
it: concurrent requests read the same list and all pass. Here each request is one atomic
increment of a fixed window (apps.tenants.rate_limits), so exactly the rate passes, and every
refusal carries Retry-After, also after the rate was lowered below a window's count.
"""

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from apps.tenants.models import OrganizationAPIKey
from apps.tenants.rate_limits import FixedWindow, Rate


class APIKeyRateThrottle(BaseThrottle):
    """API_THROTTLE_RATE requests per API key (same meaning as DRF's rates: N/second|minute|...)."""

    window = None
    # Names the counters: another scope counts apart from the API's own rate.
    scope = "api_key"

    def get_rate(self):
        # Read at request time so that a changed setting (tests) takes effect.
        return settings.API_THROTTLE_RATE

    def allow_request(self, request, view):
        if not isinstance(request.auth, OrganizationAPIKey):
            return True
        rate = Rate.parse(self.get_rate())
        self.window = FixedWindow(f"throttle:{self.scope}:{request.auth.prefix}", rate)
        return not self.window.is_exceeded(self.window.hit())

    def wait(self):
        return self.window.seconds_left()
