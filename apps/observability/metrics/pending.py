"""Request and query metrics kept in the process and written to the multiprocess files in one go.

Under gunicorn every update of a Prometheus value is a write to a memory-mapped file under a lock
(prometheus_client's multiprocess mode): a request updates eight of them, and each query three
more (django-prometheus' query count and duration, the duration's sum and bucket). The request
middleware (metrics/middleware.py) and the database backends (metrics/db_backends) hand their
updates to `request_updates` instead: appending to a deque costs next to nothing, and the
background flusher (apps/common/flusher.py) adds them up and writes each series once per cycle.
The deque holds each update's metric child and amount one after the other, not a pair per
update: a busy worker gathers hundreds of thousands of updates between two cycles, and pairs are
containers that the garbage collector would keep walking until they are written.

A scrape still sees every finished request:

- /metrics writes this process's pending updates before it reads the files;
- the other processes' updates are at most TELEMETRY_FLUSH_SECONDS old (the flusher's cycle, as
  for the request statistics);
- a worker that exits (recycling, graceful stop) writes them in its last flush (gunicorn's
  worker_exit hook, atexit as a backup).

Without multiprocess mode (runserver, tests, manage.py), or without a flusher thread
(TELEMETRY_FLUSH_SECONDS=0), updates are applied at once, as before: the process's own values
are plain numbers in memory.
"""

import bisect
import collections
import itertools
import threading

from django.conf import settings
from prometheus_client import Histogram

from apps.common import flusher
from apps.observability.metrics import registry as metrics


def observe_all(histogram, amounts):
    """The same values as `histogram.observe(amount)` for each amount (a Histogram child), in at
    most one write per file value (the sum and each bucket) instead of two per observation."""
    histogram._raise_if_not_observable()
    counts = collections.Counter(
        bisect.bisect_left(histogram._upper_bounds, amount) for amount in amounts
    )
    histogram._sum.inc(sum(amounts))
    for index, count in counts.items():
        histogram._buckets[index].inc(count)


class PendingUpdates:
    """Counter increments and histogram observations waiting to be written.

    Any thread may add; any thread may write (the flusher, a /metrics request): each update is
    taken off the deque by exactly one writer, so none is lost or written twice.
    """

    def __init__(self):
        # Metric child, amount, metric child, amount...: extended by one C call per `add`,
        # which no other thread can split (the GIL); taken two at a time by one writer at once.
        self._updates = collections.deque()
        self._taking = threading.Lock()
        self._buffered = None

    def buffered(self):
        """Whether updates wait for the flusher: multiprocess mode with a flusher thread."""
        if self._buffered is None:
            self._buffered = metrics.is_multiprocess() and settings.TELEMETRY_FLUSH_SECONDS > 0
        return self._buffered

    def add(self, *updates):
        """(metric child, amount) pairs: a counter is incremented by the amount, a histogram
        observes it."""
        # `buffered()` once decided, without a call on every request.
        if self._buffered or (self._buffered is None and self.buffered()):
            flusher.ensure_started()
            self._updates.extend(itertools.chain.from_iterable(updates))
        else:
            apply(updates)

    def add_while_flushing(self, *updates):
        """`add`, without ever starting the flusher: in a process whose requests have not started
        it (a management command, a worker before its first request) the updates are applied at
        once, as prometheus-client would."""
        if self.buffered() and flusher.is_started():
            self._updates.extend(itertools.chain.from_iterable(updates))
        else:
            apply(updates)

    def write(self):
        """Write every pending update to the metric values (their multiprocess files)."""
        with self._taking:
            updates = list(self._take_all())
        apply(updates)

    def _take_all(self):
        # One update at a time: other threads may be adding meanwhile, after the last one taken.
        pop = self._updates.popleft
        try:
            while True:
                yield pop(), pop()
        except IndexError:
            return

    def flush_job(self, final):
        """The flusher's job. A failed write is counted as lost Prometheus work, as it was when
        the middleware wrote after each response."""
        try:
            self.write()
        except Exception:
            metrics.AFTER_RESPONSE_FAILURES.labels("prometheus").inc()
            raise


def apply(updates):
    """Each series once: counters by the sum of their increments, histograms in one batch."""
    # Metric children compare and hash by identity: one entry per series.
    amounts = {}
    for child, amount in updates:
        values = amounts.get(child)
        if values is None:
            amounts[child] = [amount]
        else:
            values.append(amount)
    for child, values in amounts.items():
        if isinstance(child, Histogram):
            observe_all(child, values)
        else:
            child.inc(sum(values))


# The request and query metrics' updates (one instance per process).
request_updates = PendingUpdates()
