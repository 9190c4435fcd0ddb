"""Requests served in-process through a Django WSGI handler, as a server sends them: shared by
the benches that time or count instructions without HTTP."""

import gc
import io
import runpy
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


def get_environ(path, *, query="", host="127.0.0.1", headers=None, multithread=True):
    """The WSGI environ of `GET path?query`; `headers` as environ keys ({"HTTP_X": value})."""
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": host,
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": host,
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": multithread,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        **(headers or {}),
    }


def start_response(status, headers, exc_info=None):
    if not status.startswith("200"):
        raise RuntimeError(f"unexpected status {status}")


def serve_request(handler, environ, close=True):
    """One request, its body read as a server reads it and the response closed as a server closes
    it once sent (when the access line and the Prometheus response metrics are written)."""
    response = handler(environ, start_response)
    for _ in response:
        pass
    if close:
        response.close()


def freeze_as_a_worker_does():
    """What a gunicorn worker does once the application is loaded (gunicorn.conf.py,
    post_worker_init): move everything alive out of the garbage collector's reach, and collect
    the young generation as rarely as the worker does. Without the first, a count of
    instructions also depends on whether a full collection, walking every module, happens to
    fall inside the counted requests."""
    gc.freeze()
    worker_configuration = runpy.run_path(str(PROJECT_DIR / "gunicorn.conf.py"))
    gc.set_threshold(worker_configuration["YOUNG_COLLECTION_THRESHOLD"], *gc.get_threshold()[1:])


def write_access_lines_from_the_requests():
    """Access lines written by the request that fills a batch (apps/observability/logging/
    buffer.py) rather than by the writer thread, which would charge a batch to whatever runs
    when it wakes: another variant, or nothing counted."""
    from apps.observability.logging.buffer import access_lines

    access_lines.write_from_requests()


def collect_what_the_requests_left():
    """A full collection once the counted requests are served: garbage they left in reference
    cycles is freed inside the count, not after it (or never, at exit), so an instruction
    count does not flatter code that leaves cycles, nor depend on where the collector's
    thresholds happen to fall."""
    gc.collect()
