"""The SIGTERM handler that starts draining (the gunicorn side is in test_probe_faults.py)."""

import textwrap

import pytest

from tests.processes import project_environment, run_python

pytestmark = pytest.mark.system

INSTALL_AND_SIGNAL = textwrap.dedent(
    """
    import os, signal
    from apps.observability.health import draining

    calls = []
    signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    draining.install_drain_signal_handler()
    print("before", draining.is_draining())
    os.kill(os.getpid(), signal.SIGTERM)
    print("after", draining.is_draining(), calls == [signal.SIGTERM])
    """
)


def test_sigterm_starts_draining_and_still_reaches_the_previous_handler():
    completed = run_python(INSTALL_AND_SIGNAL, project_environment(DJANGO_ENV="test"))

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split("\n")[:2] == ["before False", "after True True"]


def test_sigterm_without_a_previous_handler_still_ends_the_process():
    code = (
        "import os, signal\n"
        "from apps.observability.health import draining\n"
        "draining.install_drain_signal_handler()\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "print('survived')\n"
    )

    completed = run_python(code, project_environment(DJANGO_ENV="test"))

    assert completed.returncode == -15
    assert "survived" not in completed.stdout
