"""WriteBuffer: what a failed write keeps, and what a forked child starts with."""

import os

import pytest

from apps.common.buffers import WriteBuffer


class Counts(WriteBuffer):
    """Counts per key; `fail` makes the next writes raise."""

    def __init__(self):
        super().__init__()
        self.written = []
        self.failures = []
        self.fail = False

    def empty(self):
        return {}

    def is_empty(self, batch):
        return not batch

    def add(self, key, count=1):
        with self.lock:
            self.pending[key] = self.pending.get(key, 0) + count

    def merge(self, batch):
        for key, count in batch.items():
            self.pending[key] = self.pending.get(key, 0) + count

    def write(self, batch):
        if self.fail:
            raise OSError("database unreachable")
        self.written.append(batch)

    def flush_failed(self, batch, error):
        self.failures.append(error)


def test_a_failed_write_keeps_the_batch_merged_with_what_arrived_since():
    counts = Counts()
    counts.add("a", 2)
    counts.fail = True

    assert counts.flush() is None
    counts.add("a")
    counts.add("b")
    counts.fail = False

    assert counts.flush() == {"a": 3, "b": 1}
    assert len(counts.failures) == 1


def test_an_empty_buffer_writes_nothing():
    counts = Counts()

    assert counts.flush() is None
    assert counts.written == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_empty():
    counts = Counts()
    counts.add("a")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports what it found and leaves at once
        os.write(write, repr(counts.pending).encode())
        os._exit(0)
    os.waitpid(pid, 0)

    assert os.read(read, 100) == b"{}"
    assert counts.pending == {"a": 1}
