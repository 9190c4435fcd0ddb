"""Request bodies sent without a Content-Length (`Transfer-Encoding: chunked`), read.

gunicorn decodes a chunked body itself and hands it over on a `wsgi.input` that ends with the
body, saying so with `wsgi.input_terminated`, and without CONTENT_LENGTH (the length is not known
up front). Django's WSGIRequest reads CONTENT_LENGTH bytes, so it sees an empty body, and so do
DRF's parsers, CSRF and silk. Django does not support this yet (ticket #35838, whose fix reads
such a stream to its end while enforcing DATA_UPLOAD_MAX_MEMORY_SIZE); until it does,
`TerminatedInputMiddleware` does the same as waitress: it reads the body, at most one byte over
the limit, and presents it with its length, so that everything downstream reads a body with a
Content-Length and refuses an oversized one with the usual 413.
"""

import io

from django.conf import settings
from django.core.exceptions import BadRequest
from django.core.handlers.wsgi import LimitedStream

READ_SIZE = 64 * 1024


def has_unannounced_body(meta):
    """Whether the server terminates the input (reading to its end is safe) and the client gave
    no usable Content-Length."""
    if not meta.get("wsgi.input_terminated"):
        return False
    try:
        return int(meta.get("CONTENT_LENGTH")) < 0
    except (TypeError, ValueError):
        return True


def read_to_end(stream, limit):
    """The stream's bytes up to its end or `limit` bytes (None: no limit), whichever is first."""
    chunks = []
    remaining = limit
    while remaining is None or remaining > 0:
        chunk = stream.read(READ_SIZE if remaining is None else min(READ_SIZE, remaining))
        if not chunk:
            break
        chunks.append(chunk)
        if remaining is not None:
            remaining -= len(chunk)
    return b"".join(chunks)


class TerminatedInputMiddleware:
    """Reads a body that came without Content-Length and gives it one (see the module)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if has_unannounced_body(request.META):
            self.buffer_body(request)
        return self.get_response(request)

    def buffer_body(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            # One byte over the limit is enough for whoever reads the body to refuse it.
            body = read_to_end(request.META["wsgi.input"], None if limit is None else limit + 1)
        except Exception:
            # The server's own errors for a malformed or truncated chunked body (gunicorn's are
            # its parse exceptions, others raise OSError): the client's fault, not a 500.
            raise BadRequest("The request body could not be read.") from None
        if not body:
            return
        request.META["CONTENT_LENGTH"] = str(len(body))
        # Django's own request.body swaps the stream for a buffer the same way.
        request._stream = LimitedStream(io.BytesIO(body), len(body))
