"""What a process gathers in memory and writes to the database now and then.

A `WriteBuffer` is added to under a lock on the request path (no I/O), taken whole by a flush,
written in one transaction, and merged back into what arrived since when the write fails, so
that a database outage loses nothing until the subclass's own bound is reached. A forked child
starts empty: what the parent buffered is the parent's to write. The request statistics
(apps/observability/telemetry) and the query findings (apps/profiling) are the two buffers; the
background flusher (apps/common/flusher.py) flushes both.
"""

import os
import threading
import weakref

_buffers = weakref.WeakSet()


class WriteBuffer:
    """Pending work of one kind. Subclasses say what a batch is, how two merge and how to write.

    - `empty()`: a new, empty batch;
    - `is_empty(batch)`;
    - `merge(batch)`: add a batch that could not be written into `self.pending`, lock held;
    - `write(batch)`: write it to the database, raising on failure;
    - `flush_failed(batch, error)`: count and log a failed write (the batch is already put back).
    """

    def __init__(self):
        self._reset()
        _buffers.add(self)

    def _reset(self):
        self.lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self.pending = self.empty()

    def empty(self):
        raise NotImplementedError

    def is_empty(self, batch):
        raise NotImplementedError

    def merge(self, batch):
        raise NotImplementedError

    def write(self, batch):
        raise NotImplementedError

    def flush_failed(self, batch, error):
        raise NotImplementedError

    def take(self):
        """The pending batch, leaving an empty one in its place."""
        with self.lock:
            batch, self.pending = self.pending, self.empty()
            return batch

    def put_back(self, batch):
        """Merge a batch that could not be written into what arrived since."""
        with self.lock:
            self.merge(batch)

    def flush(self):
        """Write what is pending; returns the batch written, or None (nothing, or it failed).

        Never raises: on failure the batch is put back for the next flush and `flush_failed`
        reports it. One flush at a time per buffer, so batches are written in order.
        """
        with self._flush_lock:
            batch = self.take()
            if self.is_empty(batch):
                return None
            try:
                self.write(batch)
            except Exception as error:
                self.put_back(batch)
                self.flush_failed(batch, error)
                return None
            return batch


def _reset_after_fork():
    for buffer in list(_buffers):
        buffer._reset()


os.register_at_fork(after_in_child=_reset_after_fork)
