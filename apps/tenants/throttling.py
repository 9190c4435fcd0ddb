from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from apps.tenants.models import OrganizationAPIKey


class APIKeyRateThrottle(SimpleRateThrottle):
    """API_THROTTLE_RATE requests per API key, counted in the shared cache."""

    scope = "api_key"

    def get_rate(self):
        # Read at request time so that a changed setting (tests) takes effect.
        return settings.API_THROTTLE_RATE

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, OrganizationAPIKey):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.prefix}
