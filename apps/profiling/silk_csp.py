"""silk's pages under the Content-Security-Policy: what they need beyond the site's policy.

silk's templates carry a few inline event handlers and `style` attributes, and its date picker
compiles its date formatter with eval. Rather than 'unsafe-inline' (silk shows recorded request
bodies, headers and SQL, text an attacker chooses), exactly those handlers and attributes are
allowed by hash ('unsafe-hashes'), on silk's pages only, with django-csp's own `csp_update`.
"""

import base64
import hashlib

from csp.constants import UNSAFE_EVAL, UNSAFE_HASHES
from csp.decorators import csp_update

from apps.profiling.callsite import pass_through

# Where project/urls.py mounts silk's UI.
SILK_PATH_PREFIX = "/silk/"
# The inline code of silk's templates, verbatim: an empty or blank <body onload>, the filter
# selects' submit, the profile graph's redraw.
INLINE_EVENT_HANDLERS = ("", "\n", "this.form.submit();", "createViz()")
INLINE_STYLE_ATTRIBUTES = ("display:none", "display: none")


def source_hash(source):
    """The CSP source expression that allows exactly this inline code."""
    digest = hashlib.sha256(source.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


SILK_POLICY_ADDITIONS = {
    "script-src": [UNSAFE_HASHES, UNSAFE_EVAL, *map(source_hash, INLINE_EVENT_HANDLERS)],
    "style-src": [UNSAFE_HASHES, *map(source_hash, INLINE_STYLE_ATTRIBUTES)],
}


class SilkContentSecurityPolicyMiddleware:
    """Adds SILK_POLICY_ADDITIONS to the policy of silk's pages; sits inside CSPMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.get_silk_response = csp_update(SILK_POLICY_ADDITIONS)(get_response)

    # Around every request's queries: the query inspector must not take them for profiling's own.
    @pass_through
    def __call__(self, request):
        if request.path_info.startswith(SILK_PATH_PREFIX):
            return self.get_silk_response(request)
        return self.get_response(request)
