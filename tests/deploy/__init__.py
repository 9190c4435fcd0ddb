"""Tests of the deployment files: Dockerfile, .dockerignore, docker-compose.yml, deploy/k8s/.

The helpers below read the project's own configuration sources (settings.py, gunicorn.conf.py)
so that the deployment files are checked against what the code actually reads and does.
"""

import ast
import os
import shutil
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SETTINGS_FILE = PROJECT_ROOT / "project" / "settings.py"
GUNICORN_CONFIG_FILE = PROJECT_ROOT / "gunicorn.conf.py"


def tool_path(name):
    """A command-line tool installed by requirements/dev.txt; the test fails when it is missing."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.is_file():
        return str(beside_python)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; install requirements/dev.txt")
    return found


def skip_without_stack_program(reason):
    """Skip the test for `reason` (a program this machine lacks), or fail it under
    REQUIRE_STACK=1 (.ci/run), where the stack's tests must run."""
    if os.environ.get("REQUIRE_STACK") == "1":
        pytest.fail(f"{reason} (REQUIRE_STACK=1)", pytrace=False)
    pytest.skip(reason)


def program(path, package):
    """`path` when that program is installed; else skip_without_stack_program with the command
    that installs it."""
    if path and shutil.which(path):
        return path
    skip_without_stack_program(f"{path or package} not found: apt-get install {package}")


def _string_constant(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _variable_read_by(node):
    """The variable name when `node` reads one from the environment, else None."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
        reads = ast.unparse(node.func.value) == "env" or ast.unparse(node.func) in {
            "os.environ.get",
            "os.getenv",
        }
        return _string_constant(node.args[0]) if reads else None
    if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
        return _string_constant(node.slice)
    return None


def settings_variables():
    """Names of the environment variables project/settings.py reads.

    Covers `env.<type>("NAME", ...)`, `os.environ.get("NAME")`, `os.getenv("NAME")` and
    `os.environ["NAME"]`.
    """
    names = {_variable_read_by(node) for node in ast.walk(ast.parse(SETTINGS_FILE.read_text()))}
    names.discard(None)
    if "DATABASE_URL" not in names:
        pytest.fail(f"could not find the variables {SETTINGS_FILE} reads (found {sorted(names)})")
    return names


def gunicorn_graceful_timeout():
    """gunicorn's graceful_timeout (seconds) as assigned in gunicorn.conf.py."""
    for node in ast.parse(GUNICORN_CONFIG_FILE.read_text()).body:
        if (
            isinstance(node, ast.Assign)
            and any(
                isinstance(target, ast.Name) and target.id == "graceful_timeout"
                for target in node.targets
            )
            and isinstance(node.value, ast.Constant)
        ):
            return node.value.value
    pytest.fail(f"{GUNICORN_CONFIG_FILE} assigns no constant graceful_timeout")
