"""Helpers for tests that run the project in a separate process (manage.py, gunicorn)."""

import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests import fresh_python

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
    """`python manage.py *arguments` in a fresh process (see tests/fresh_python.py) in the project
    directory, with exactly `environment`; returns its CompletedProcess (output as text)."""
    return fresh_python.run(["manage.py", *arguments], environment, timeout)


def run_python(code, environment, timeout=60):
    """`python -c code` in a fresh process, as run_manage."""
    return fresh_python.run(["-c", code], environment, timeout)


def run_python_concurrently(code, argument_lists, environment, timeout=120):
    """`python -c code` once per entry of `argument_lists` (its command-line arguments), all
    started at once in the project directory (forked from the warmed-up helper of
    tests/fresh_python.py); returns each one's CompletedProcess, in order.

    All are waited for up to `timeout` seconds together; when they outstay it, every child still
    running is killed and TimeoutExpired raised.
    """
    with tempfile.TemporaryDirectory(prefix="orders-concurrent-") as directory:
        outputs = [
            (Path(directory) / f"{number}.out", Path(directory) / f"{number}.err")
            for number in range(len(argument_lists))
        ]
        children = [
            fresh_python.spawn(
                ["-c", code, *(str(argument) for argument in arguments)],
                environment,
                stdout_path,
                stderr_path,
            )
            for arguments, (stdout_path, stderr_path) in zip(argument_lists, outputs, strict=True)
        ]
        deadline = time.monotonic() + timeout
        try:
            for child in children:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
        finally:
            for child in children:
                if child.poll() is None:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
        return [
            subprocess.CompletedProcess(
                child.args, child.returncode, stdout_path.read_text(), stderr_path.read_text()
            )
            for child, (stdout_path, stderr_path) in zip(children, outputs, strict=True)
        ]


def script_environment(database_url):
    """The environment of a script that sets Django up itself, in test mode on `database_url`,
    outside gunicorn's Prometheus multiprocess mode."""
    return project_environment(
        DJANGO_ENV="test",
        DJANGO_SETTINGS_MODULE="project.settings",
        DATABASE_URL=database_url,
        PROMETHEUS_MULTIPROC_DIR=None,
    )


def postgres_parameters(settings_dict):
    """psycopg's connection parameters for the server of a PostgreSQL DATABASES entry."""
    return {
        "host": settings_dict["HOST"] or "127.0.0.1",
        "port": settings_dict["PORT"] or 5432,
        "user": settings_dict["USER"] or "postgres",
        "password": settings_dict["PASSWORD"] or None,
    }


@contextmanager
def fresh_postgres_database(settings_dict, name):
    """A new, empty database `name` on the server of a PostgreSQL DATABASES entry, for servers a
    test starts; yields its DATABASE_URL and drops it (connections included) afterwards."""
    import psycopg
    from psycopg import sql

    parameters = postgres_parameters(settings_dict)
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(dbname="postgres", autocommit=True, **parameters) as admin:
        admin.execute(drop)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield postgres_url(settings_dict, name)
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **parameters) as admin:
            admin.execute(drop)


def postgres_url(settings_dict, name=None):
    """The DATABASE_URL of database `name` (the entry's own by default) on the server of a
    PostgreSQL DATABASES entry, for a child process to reach the database the test uses."""
    parameters = postgres_parameters(settings_dict)
    password = f":{parameters['password']}" if parameters["password"] else ""
    host, port = parameters["host"], parameters["port"]
    return (
        f"postgres://{parameters['user']}{password}@{host}:{port}/{name or settings_dict['NAME']}"
    )


# Ports for the servers tests start: below the kernel's ephemeral range, which outgoing
# connections and port-0 binds draw from, so none of those takes one before its server binds it.
LOWEST_SERVER_PORT = 10000
_handed_out = set()
_random = random.Random()  # seeded from the OS, whatever seeds the global one


def _ephemeral_ports_start():
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def wait_until(condition, seconds, step=0.05):
    """Poll `condition` until it returns a truthy value or `seconds` pass; returns the value."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def port_accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port():
    """A local TCP port that nothing listens on, for a server the test starts.

    Drawn at random from this xdist worker's share of the ports below the ephemeral range (every
    WORKER_COUNT-th port), never twice in a process: parallel workers cannot pick the same one.
    """
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    first = LOWEST_SERVER_PORT + worker
    candidates = range(first, _ephemeral_ports_start(), workers)
    if not candidates:  # an ephemeral range starting that low: let the kernel choose
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]
    for _ in range(200):
        port = _random.choice(candidates)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port among {candidates}")


@dataclass
class GunicornServer:
    process: subprocess.Popen | fresh_python.SpawnedProcess
    base_url: str
    log_path: Path
    request_timeout: float

    def get(self, path, *, host=None, timeout=None, **kwargs):
        headers = kwargs.pop("headers", {})
        if host is not None:
            headers["Host"] = host
        return requests.get(
            f"{self.base_url}{path}",
            headers=headers,
            timeout=self.request_timeout if timeout is None else timeout,
            **kwargs,
        )

    def log(self):
        return self.log_path.read_text()


@contextmanager
def running_gunicorn(
    environment,
    *extra_arguments,
    port=None,
    log_path=None,
    startup_seconds=30,
    stop_seconds=30,
    request_timeout=10,
    new_interpreter=False,
):
    """A gunicorn master serving the project on 127.0.0.1, stopped (its process group) when the
    block ends; yields a GunicornServer once /health answers 200.

    `port` defaults to a free one; the output goes to `log_path`, kept, or else to a file of the
    project directory removed at the end. The master is forked from the warmed-up helper of
    tests/fresh_python.py (its workers inherit the libraries it preloaded), or with
    `new_interpreter` started as the shell starts it.
    """
    port = free_port() if port is None else port
    keep_log = log_path is not None
    log_path = Path(log_path) if keep_log else PROJECT_DIR / f".gunicorn-test-{port}.log"
    command = [GUNICORN, "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", *extra_arguments]
    with open(log_path, "w") as log:
        if new_interpreter:
            process = subprocess.Popen(
                command,
                cwd=PROJECT_DIR,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        else:
            process = fresh_python.spawn(command, environment, log_path)
    server = GunicornServer(process, f"http://127.0.0.1:{port}", log_path, request_timeout)
    try:
        deadline = time.monotonic() + startup_seconds
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early:\n{server.log()}")
            try:
                if server.get("/health", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        stop_process_group(process, stop_seconds)
        if not keep_log:
            log_path.unlink(missing_ok=True)


@contextmanager
def gunicorn_server(environment, *extra_arguments, startup_seconds=30):
    """A gunicorn master serving the project on a free local port; yields its base URL."""
    with running_gunicorn(environment, *extra_arguments, startup_seconds=startup_seconds) as server:
        yield server.base_url


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
