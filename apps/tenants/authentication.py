"""`Authorization: Bearer <api key>` for the API, on top of djangorestframework-api-key.

Failed attempts are counted per client address (apps.tenants.brute_force): past
API_KEY_FAILURE_RATE the address is answered 429 with Retry-After, whatever key it sends, until
the window ends.

A key this process has checked before is taken from its entries (apps.tenants.known_keys): the
lock-out check, the key's current state, the last-use guard and the hit of the view's per-key
throttles (`window_for`: APIKeyRateThrottle) are then one Redis round trip, and no query; the
throttles find their hit counted (`counted_hits`). Any other key, or when that fails, is checked
as the first time: lock-out, database, and each throttle counts its own hit.
"""

from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions, permissions
from rest_framework_api_key.permissions import KeyParser

from apps.tenants import known_keys
from apps.tenants.brute_force import APIKeyFailures
from apps.tenants.models import LAST_USED_WRITE_INTERVAL_SECONDS, OrganizationAPIKey


class BearerKeyParser(KeyParser):
    keyword = "Bearer"


class BearerAPIKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates a request by organization API key.

    `request.auth` becomes the key (with its organization); `request.user` stays anonymous:
    keys act for an organization, not for a person.
    """

    keyword = "Bearer"
    key_parser = BearerKeyParser()

    def authenticate(self, request):
        key = self.key_parser.get(request)
        if key is None:
            self._refuse_another_scheme(request)
            return None
        failures = APIKeyFailures(request)
        api_key = self._known_key(request, key, failures)
        if api_key is not None:
            return AnonymousUser(), api_key
        if failures.locked_out():
            raise exceptions.Throttled(
                wait=failures.seconds_left(),
                detail="Too many failed API key attempts from this address.",
            )
        try:
            api_key = self._api_key(key)
        except exceptions.AuthenticationFailed:
            failures.record()
            raise
        api_key.record_use()
        return AnonymousUser(), api_key

    def _refuse_another_scheme(self, request):
        """`Token <key>`, `Api-Key <key>` or a bare `Bearer` say what is expected, rather than
        that no credentials were sent."""
        scheme, _, rest = request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
        if not scheme:
            return
        if scheme.lower() != self.keyword.lower():
            raise exceptions.NotAuthenticated(
                f"The Authorization scheme is {self.keyword}, not {scheme}: "
                f"send `Authorization: {self.keyword} <API key>`."
            )
        if not rest.strip():
            raise exceptions.NotAuthenticated(
                f"`Authorization: {self.keyword}` needs the API key after it."
            )

    def _known_key(self, request, key, failures):
        """The key from this process's entries, still current, not expired, the address not
        locked out, its use recorded and its throttle hits counted; None otherwise (the caller
        checks it as the first time)."""
        if not known_keys.shared():
            return None
        entry = known_keys.get(key.strip())
        if entry is None or entry.api_key.has_expired:
            return None
        windows = throttle_windows(request, entry.api_key)
        checked = known_keys.check(
            entry,
            failures.window.count_key,
            failures.window.rate.limit,
            entry.api_key.last_use_guard,
            LAST_USED_WRITE_INTERVAL_SECONDS,
            windows,
        )
        if checked is None or not checked.current:
            known_keys.forget(key.strip())
            return None
        if checked.guard_taken:
            entry.api_key.write_last_use()
        request.counted_hits = {
            window.count_key: count
            for window, count in zip(windows, checked.window_counts, strict=True)
        }
        return entry.api_key

    def _api_key(self, key):
        key = key.strip()
        if not key or len(key) > 200:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        token = known_keys.current_token(key.partition(".")[0]) if known_keys.shared() else None
        try:
            api_key = OrganizationAPIKey.objects.get_from_key(key)
        except OrganizationAPIKey.DoesNotExist:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.") from None
        if api_key.has_expired:
            raise exceptions.AuthenticationFailed("The API key has expired.")
        if known_keys.shared():
            known_keys.keep(key, api_key, token)
        return api_key

    def authenticate_header(self, request):
        # Makes DRF answer 401 (not 403) with `WWW-Authenticate: Bearer`.
        return self.keyword


def throttle_windows(request, api_key):
    """The windows the view's throttles would count `api_key`'s request in (those that say:
    `window_for`). Every API view lets any key through its permissions, so a request counted here
    is one its throttles would have counted."""
    view = (getattr(request, "parser_context", None) or {}).get("view")
    if view is None:
        return []
    return [
        throttle.window_for(api_key)
        for throttle in view.get_throttles()
        if hasattr(throttle, "window_for")
    ]


class HasOrganizationAPIKey(permissions.BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.auth, OrganizationAPIKey)
