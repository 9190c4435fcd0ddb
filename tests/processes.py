"""Helpers for tests that run the project in a separate process (manage.py, gunicorn)."""

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

PROJECT_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
STRONG_SECRET_KEY = "test-only-" + "k9Qz3xV7pL2mN8rT5wY1" * 3


def project_environment(**overrides):
    """This process's environment without project variables, plus `overrides`.

    A variable given as None is removed, so a test states exactly what the child sees.
    """
    project_prefixes = ("DJANGO_", "DB_", "DATABASE_", "REDIS_", "LOG_", "WEB_", "GUNICORN_")
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(project_prefixes)
    }
    environment.pop("PORT", None)
    for name, value in overrides.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = str(value)
    return environment


def production_environment(**overrides):
    variables = {
        "DJANGO_ENV": "production",
        "DJANGO_SECRET_KEY": STRONG_SECRET_KEY,
        "DJANGO_ALLOWED_HOSTS": "orders.example.com",
    }
    return project_environment(**{**variables, **overrides})


def run_manage(*arguments, environment, timeout=120):
    return subprocess.run(
        [PYTHON, "manage.py", *arguments],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_python(code, environment, timeout=60):
    return subprocess.run(
        [PYTHON, "-c", code],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def gunicorn_server(environment, *extra_arguments, startup_seconds=30):
    """A gunicorn master serving the project on a free local port; yields its base URL."""
    port = free_port()
    log_path = PROJECT_DIR / f".gunicorn-test-{port}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [GUNICORN, "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", *extra_arguments],
            cwd=PROJECT_DIR,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_seconds
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early:\n{log_path.read_text()}")
            try:
                requests.get(f"{base_url}/health", timeout=2)
                break
            except (requests.ConnectionError, requests.Timeout):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start:\n{log_path.read_text()}") from None
                time.sleep(0.1)
        yield base_url
    finally:
        stop_process_group(process)
        log_path.unlink(missing_ok=True)


def stop_process_group(process, grace_seconds=30):
    """SIGTERM the group (graceful shutdown), SIGKILL it if it outstays the grace period."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
