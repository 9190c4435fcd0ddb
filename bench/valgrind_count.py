"""Instructions a command executes, counted by valgrind: the same count from run to run whatever
else the machine is doing, where seconds on a shared machine vary by tens of percent."""

import os
import re
import shutil
import subprocess


def require_valgrind(option="--instructions"):
    if shutil.which("valgrind") is None:
        raise SystemExit(f"{option} needs valgrind (apt-get install -y valgrind)")


def instructions(command, *, cwd, env=None):
    """Instructions executed by `command` (cachegrind without cache simulation), with a fixed
    hash seed: the same dict layouts, so the same count from run to run."""
    completed = subprocess.run(
        [
            *("valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"),
            *command,
        ],
        cwd=cwd,
        env={**(os.environ if env is None else env), "PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", completed.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from valgrind:\n{completed.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))
