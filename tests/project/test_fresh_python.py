"""Programs the tests spawn from the warmed-up helper (tests/fresh_python.py) behave as the ones
subprocess.Popen starts: their output, exit status, session and signals."""

import os
import signal
import subprocess

import pytest

from tests import fresh_python
from tests.processes import project_environment

pytestmark = [pytest.mark.system, pytest.mark.backend_independent]


def test_a_spawned_program_writes_its_output_and_exits_with_its_status(tmp_path):
    log, errors = tmp_path / "out.log", tmp_path / "err.log"
    code = "import sys; print('to stdout'); print('to stderr', file=sys.stderr); sys.exit(3)"

    program = fresh_python.spawn(["-c", code], project_environment(), log, errors)

    assert program.wait(timeout=30) == 3
    assert log.read_text() == "to stdout\n"
    assert errors.read_text() == "to stderr\n"


def test_a_spawned_program_leads_its_own_session_and_dies_by_its_groups_signal(tmp_path):
    code = "import time; time.sleep(60)"
    program = fresh_python.spawn(["-c", code], project_environment(), tmp_path / "out.log")

    assert program.poll() is None
    assert os.getsid(program.pid) == program.pid
    with pytest.raises(subprocess.TimeoutExpired):
        program.wait(timeout=0.2)
    os.killpg(program.pid, signal.SIGKILL)

    assert program.wait(timeout=30) == -signal.SIGKILL


def test_a_spawned_program_sees_exactly_the_environment_it_was_given(tmp_path):
    log = tmp_path / "out.log"
    code = "import os; print(os.environ.get('ONLY_HERE'), os.environ.get('PYTEST_CURRENT_TEST'))"

    program = fresh_python.spawn(["-c", code], {"ONLY_HERE": "yes"}, log)

    assert program.wait(timeout=30) == 0
    assert log.read_text() == "yes None\n"
