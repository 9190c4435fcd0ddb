"""Work the observability middleware does once the response has been sent.

A WSGI server calls the response's close() after writing its last byte (PEP 3333; gunicorn,
uWSGI, wsgiref's runserver, Django's test client and its ASGI handler all do), and Django's
HttpResponseBase.close() calls the response's resource closers. The access line and the
Prometheus observations are made there: measured while the request is served, written after, as
gunicorn writes its own access log. Their CPU cost stays the same; the client no longer waits
for it.

The work runs in a copy of the context variables of the moment it was registered, so a line
written after the response still carries the request's id, route and bound fields.

The work is attached to the response object: a middleware further out that answered with a new
response instead (ConditionalGetMiddleware's 304, say) would drop it. settings.MIDDLEWARE keeps
only SecurityMiddleware, WhiteNoise and the probes outside the observability middleware, and they
pass the response on.
"""

import contextvars
import functools

import structlog

from apps.observability.metrics import registry as metrics

logger = structlog.get_logger(__name__)


def call_after_response(response, work, callback, *args):
    """Call `callback(*args)` when the server closes `response`, in the context of this moment.

    `work` names it in the error line and in orders_after_response_failures_total if it fails:
    Django would swallow the exception silently.
    """
    context = contextvars.copy_context()
    # A private list (FileResponse closes its file through it), unchanged since Django 3.0;
    # tests/observability/test_logging.py fails if a Django upgrade stops calling it.
    response._resource_closers.append(functools.partial(_run, context, work, callback, args))


def _run(context, work, callback, args):
    try:
        context.run(callback, *args)
    except Exception:
        metrics.AFTER_RESPONSE_FAILURES.labels(work).inc()
        context.run(logger.exception, "after_response_failed", work=work)
