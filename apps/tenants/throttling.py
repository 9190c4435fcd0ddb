"""API_THROTTLE_RATE requests per API key, counted atomically in the shared cache.

DRF's SimpleRateThrottle keeps a list of request times per key and writes it back after reading
it: concurrent requests read the same list and all pass. Here each request is one atomic
increment of a fixed window (apps.tenants.rate_limits), so exactly the rate passes, and every
refusal carries Retry-After, also after the rate was lowered below a window's count.

With a key this process has checked before, the hit is counted in the key check's own Redis round
trip (apps.tenants.authentication), and the throttle finds it in `request.counted_hits`.
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

    def window_for(self, api_key):
        """The window the requests of `api_key` are counted in."""
        return FixedWindow(f"throttle:{self.scope}:{api_key.prefix}", Rate.parse(self.get_rate()))

    def allow_request(self, request, view):
        if not isinstance(request.auth, OrganizationAPIKey):
            return True
        self.window = self.window_for(request.auth)
        count = getattr(request, "counted_hits", {}).get(self.window.count_key)
        if count is None:
            count = self.window.hit()
        return not self.window.is_exceeded(count)

    def wait(self):
        return self.window.seconds_left()
