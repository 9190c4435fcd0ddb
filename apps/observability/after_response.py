"""Work the observability middleware does once the response has been sent.

A WSGI server calls the response's close() after writing its last byte (PEP 3333; gunicorn,
uWSGI, wsgiref's runserver, Django's test client and its ASGI handler all do), and Django's
HttpResponseBase.close() calls the response's resource closers. An access line written as it
is (a slow request's, a 5xx's, every line when LOG_ACCESS_BUFFER_SECONDS is 0) is written there:
measured while the request is served, written after, as gunicorn writes its own access log. Its
CPU cost stays the same; the client no longer waits for it.

The work runs in a copy of the context variables of the moment the response's first work was
registered, so a line written after the response still carries the request's id, route and
bound fields.

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


# The response attribute holding its (work, callback, args) in registration order.
_PENDING_WORK = "_observability_after_response"


def call_after_response(response, work, callback, *args):
    """Call `callback(*args)` when the server closes `response`, in the context of this moment.

    `work` names it in the error line and in orders_after_response_failures_total if it fails:
    Django would swallow the exception silently. The work of one response runs in registration
    order from one resource closer, in the context of the first registration.
    """
    pending = response.__dict__.get(_PENDING_WORK)
    if pending is None:
        pending = response.__dict__[_PENDING_WORK] = []
        # A private list (FileResponse closes its file through it), unchanged since Django 3.0;
        # tests/observability/test_logging.py fails if a Django upgrade stops calling it.
        response._resource_closers.append(
            functools.partial(_run_all, contextvars.copy_context(), pending)
        )
    pending.append((work, callback, args))


def _run_all(context, pending):
    try:
        for work, callback, args in pending:
            _run(context, work, callback, args)
    finally:
        # The work's arguments hold the response, which holds this list: a reference cycle that
        # would keep the request's whole object graph alive until the garbage collector runs.
        pending.clear()


def _run(context, work, callback, args):
    try:
        context.run(callback, *args)
    except Exception:
        metrics.AFTER_RESPONSE_FAILURES.labels(work).inc()
        context.run(logger.exception, "after_response_failed", work=work)
