"""The local stack's load balancer (tests/stack.py: load_balancer): once started, it takes runtime
API commands, although HAProxy can accept on its ports before its admin socket exists."""

import pytest

from tests.processes import free_port
from tests.stack import PROGRAMS, load_balancer

from . import program

pytestmark = [pytest.mark.system, pytest.mark.backend_independent]

# The socket comes after the ports in about one start in ten: enough starts that a start which
# waits only for the port fails this test.
STARTS = 40


def test_started_load_balancer_takes_runtime_commands_at_once(tmp_path):
    program(PROGRAMS["haproxy"], "haproxy")  # skipped without it, failed under REQUIRE_STACK=1
    for start in range(STARTS):
        directory = tmp_path / str(start)
        directory.mkdir()
        haproxy, runtime = load_balancer(directory, free_port(), free_port(), slots=1)
        haproxy.start()
        try:
            runtime.place("web1", "127.0.0.1:9")
        finally:
            haproxy.stop()
