"""Error tracking with Sentry: initialised from settings, only when SENTRY_DSN is set.

`sentry_sdk.init(dsn="")` would still install the Django integration (and its cost), so settings
call `init_sentry` only with a DSN. What leaves the process is scrubbed twice: Sentry's
EventScrubber with a longer deny list (it matches exact key names), then the project's redaction
(apps/common/redaction.py: key names as substrings, secrets inside any text) in
before_send and before_send_transaction. Request bodies are never sent.

Events carry the request id (also in the logs and the X-Request-ID response header), the route
and the organization and user ids as tags, so an event leads to the request's log lines.
"""

import warnings

import sentry_sdk
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.logging import ignore_logger
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

from apps.common.paths import is_ops_path
from apps.common.redaction import redact_sentry_event
from apps.common.request_context import current_request_state, request_identity

# Sentry compares exact (lower-cased) key names; the redaction in before_send matches
# substrings, these catch the common names before the event is even serialised.
EXTRA_DENYLIST = [
    "api-key",
    "x-api-key",
    "http_authorization",
    "http_cookie",
    "http_x_api_key",
    "access_token",
    "refresh_token",
    "client_secret",
    "db_password",
    "database_url",
    "dsn",
    "sentry_dsn",
    "secret_key",
    "csrfmiddlewaretoken",
]
# The access line of a 5xx is ERROR: as a Sentry event it would duplicate the exception the
# Django integration already reports.
ACCESS_LOGGER_NAME = "apps.observability.access"


def request_path(sampling_context):
    """The path of the request a transaction is about to trace (WSGI or ASGI), else ''."""
    environ = sampling_context.get("wsgi_environ")
    if environ is not None:
        return environ.get("PATH_INFO", "")
    scope = sampling_context.get("asgi_scope")
    if scope is not None:
        return scope.get("path", "")
    return ""


def traces_sampler_for(sample_rate):
    """Never trace probe, metrics, stats, static and silk traffic; the rest at `sample_rate`.

    A parent's decision (a `sentry-trace` header) is not followed: a client must not be able to
    switch tracing on.
    """

    def traces_sampler(sampling_context):
        if is_ops_path(request_path(sampling_context)):
            return 0.0
        return sample_rate

    return traces_sampler


def _add_request_tags(event):
    state = current_request_state()
    if state is None:
        return
    user_id, organization_id = request_identity(state.request)
    tags = event.get("tags")
    if not isinstance(tags, dict):
        tags = event["tags"] = {}
    for name, value in (
        ("request_id", state.request_id),
        ("route", state.route),
        ("user_id", user_id),
        ("organization_id", organization_id),
    ):
        if value is not None:
            tags[name] = str(value)


def before_send(event, hint):
    event = redact_sentry_event(event)
    _add_request_tags(event)
    return event


def before_send_transaction(event, hint):
    return redact_sentry_event(event)


def is_enabled():
    return sentry_sdk.get_client().is_active()


def tag_request(request_id=None, route=None):
    """Tag the request's scope so its transaction (finished after the response) carries them."""
    scope = sentry_sdk.get_isolation_scope()
    if request_id is not None:
        scope.set_tag("request_id", request_id)
    if route is not None:
        scope.set_tag("route", route)


def init_sentry(*, dsn, environment, release, traces_sample_rate, transport=None):
    """Start the Sentry client; call only with a DSN."""
    options = {}
    if transport is not None:
        options["transport"] = transport
    with warnings.catch_warnings():
        # sentry-sdk 2.75 deprecates send_default_pii in favour of `data_collection`, but a
        # `data_collection` dict switches the EventScrubber off; False is also the default.
        warnings.filterwarnings(
            "ignore", message=".*send_default_pii.*", category=DeprecationWarning
        )
        sentry_sdk.init(
            dsn=dsn,
            environment=environment,
            release=release or None,
            send_default_pii=False,
            # Request bodies carry passwords and tokens; they are never sent.
            max_request_body_size="never",
            event_scrubber=EventScrubber(
                denylist=[*DEFAULT_DENYLIST, *EXTRA_DENYLIST], recursive=True
            ),
            before_send=before_send,
            before_send_transaction=before_send_transaction,
            traces_sampler=traces_sampler_for(traces_sample_rate),
            # Middleware, signal and cache spans cost most of the SDK's overhead.
            integrations=[
                DjangoIntegration(middleware_spans=False, signals_spans=False, cache_spans=False)
            ],
            **options,
        )
    ignore_logger(ACCESS_LOGGER_NAME)
