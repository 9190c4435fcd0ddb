"""apps.common.process_id: the process's id without a system call, right after a fork too."""

import os

from apps.common import process_id


def test_it_is_this_processs_id():
    assert process_id.current == os.getpid()


def test_a_forked_child_reads_its_own_id():
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(write_end, f"{process_id.current} {os.getpid()}".encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    with os.fdopen(read_end) as pipe:
        seen, actual = pipe.read().split()
    assert seen == actual
    assert int(seen) != os.getpid()
