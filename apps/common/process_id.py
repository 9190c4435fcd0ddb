"""This process's id, kept current across fork() without a system call on every read.

os.getpid() is a system call each time (glibc no longer caches it), and the log lines, the
flusher and the metrics ask for it on every request. Read `process_id.current`: it is set at
import and again in every child right after fork() (gunicorn's workers, multiprocessing).
"""

import os

current = os.getpid()


def _after_fork_in_child():
    global current
    current = os.getpid()


os.register_at_fork(after_in_child=_after_fork_in_child)
