"""Access lines rendered and written in batches, at most LOG_ACCESS_BUFFER_SECONDS late.

Under full load, an access line written as its request ends cost about as much as the rest of the
observability stack (bench/README.md, issue 19, ninth and tenth rounds): the formatter's code and
the stream's write and flush ran once per request, each time in caches that the server's own
work had emptied. `LineBuffer` keeps what each line needs as its request leaves (its fields,
request context and moment), and makes the events, renders them and writes them together: the
same text, in one write and one flush per handler for the whole batch, as nginx's
`access_log ... buffer=` does.

- A line waits at most LOG_ACCESS_BUFFER_SECONDS: the buffer's thread writes what is pending that
  often, and at once when MAX_PENDING_LINES are waiting. The requests of INFO lines only append.
- A line at WARNING or above (a slow request, a 5xx) is written at once, after those pending, so
  that each handler receives the access lines in the order their requests ended. Other loggers'
  lines are not held: an access line can follow a line logged after its request ended, and its
  timestamp is its request's.
- A worker that exits writes what is pending (gunicorn's worker_exit hook; atexit as a backup).
  A worker killed outright (SIGKILL, the OOM killer) loses the access lines of its last interval
  at most; Prometheus and the request statistics have counted those requests.
- A forked child starts empty: what the parent held is the parent's to write.

LOG_ACCESS_BUFFER_SECONDS=0 (development, tests) writes every line at once.
"""

import atexit
import collections
import logging
import os
import threading

from django.conf import settings

from apps.common import process_id
from apps.observability.logging.formatting import line_event, rendered_lines, write_line
from apps.observability.metrics import registry as metrics

failures_logger = logging.getLogger(__name__)

# A batch's bound: the memory held and the size of one write (a few hundred bytes a line).
MAX_PENDING_LINES = 256


class LineBuffer:
    """Lines from `emit_redacted` waiting to be rendered and written (one instance per process).

    Any thread may add; one writer at a time takes every pending line, so each line is written
    once and the batches in order.

    Its thread is its own, not a job of the background flusher (apps/common/flusher.py): the
    flusher writes to the database, and a database outage would hold access lines behind its
    timeouts while requests keep adding them.
    """

    def __init__(self):
        self._reset()

    def _reset(self):
        self._pending = collections.deque()
        self._write_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._started_pid = None
        self._writer = None
        self._stop = threading.Event()
        self._wake = threading.Event()

    def add(self, handlers, logger, level, fields, context, now):
        """Write the line later (`emit_redacted` hands over the line it would write to
        `handlers`: its fields, request context and moment), or now, with those pending, at
        WARNING and above or when the batch is full."""
        pending = self._pending
        pending.append((handlers, logger, level, fields, context, now))
        if self._started_pid != process_id.current:
            self._start()
        if level >= logging.WARNING:
            self.write()
        elif len(pending) >= MAX_PENDING_LINES:
            if self._writer is None:
                self.write()
            else:
                self._wake.set()

    def write(self):
        """Render every pending line and write them, one write per handler; never raises."""
        with self._write_lock:
            batches = {}
            last_line = {}
            pop = self._pending.popleft
            while True:
                try:
                    handlers, logger, level, fields, context, now = pop()
                except IndexError:
                    break
                try:
                    method_name, event_dict, redacted = line_event(
                        logger, level, fields, context, now
                    )
                    line = (logger, level, method_name, event_dict)
                    for handler, text in rendered_lines(handlers, *line, redacted=redacted):
                        batches.setdefault(handler, []).append(text)
                        last_line[handler] = line
                except Exception:
                    # One line that cannot be rendered must not take the batch with it.
                    metrics.AFTER_RESPONSE_FAILURES.labels("access line").inc()
                    failures_logger.exception("access line failed")
            for handler, texts in batches.items():
                write_line(handler, handler.terminator.join(texts), *last_line[handler])

    def pending_count(self):
        return len(self._pending)

    def write_from_requests(self):
        """No writer thread in this process: the request that fills a batch writes it. For the
        benches, which charge each request its share of the batch it was written in."""
        with self._start_lock:
            self.stop()
            self._started_pid = process_id.current

    def stop(self):
        """Stop this process's writer thread (it writes what is pending as it stops)."""
        self._stop.set()
        self._wake.set()
        self._writer = None

    def _start(self):
        with self._start_lock:
            if self._started_pid == process_id.current:
                return
            self._started_pid = process_id.current
            interval = settings.LOG_ACCESS_BUFFER_SECONDS
            if interval <= 0:
                return  # no writer thread: lines wait for a full batch, a warning or the exit
            self._stop = threading.Event()
            self._wake = threading.Event()
            self._writer = threading.Thread(
                target=self._run,
                args=(self._stop, self._wake, interval),
                name="access-line-writer",
                daemon=True,
            )
            self._writer.start()

    def _run(self, stop, wake, interval):
        while not stop.is_set():
            wake.wait(interval)
            wake.clear()
            self.write()


# The access lines of this process (RequestContextMiddleware, when LOG_ACCESS_BUFFER_SECONDS > 0).
access_lines = LineBuffer()

os.register_at_fork(after_in_child=access_lines._reset)
# Before logging's own atexit hook closes the handlers (atexit runs the last registered first).
atexit.register(access_lines.write)
