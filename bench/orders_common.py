"""Shared by the bench scripts (orders_list.py, orders_race.py, gunicorn_workers.py): a
PostgreSQL bench database with demo data, a gunicorn server on 127.0.0.1, and a timed HTTP load
from threads."""

import contextlib
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
START_TIMEOUT = 60
CLIENT_TIMEOUT = 30
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/orders_bench_list"


def ensure_database(url):
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def manage(environment, *args):
    completed = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode:
        sys.stderr.write(completed.stdout + completed.stderr)
        raise SystemExit(f"manage.py {' '.join(args)} failed")
    return completed.stdout


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# port -> process group of the gunicorn serving it, for the CPU accounting of bench/wrk_load.py.
server_groups = {}


@contextlib.contextmanager
def gunicorn(environment, workers, threads=1, directory=BASE_DIR):
    """gunicorn with the project's gunicorn.conf.py, bound to 127.0.0.1 only; yields its port.
    The server leads its own process group, whose id is the port's `server_group` below.
    `directory`: the checkout whose code it serves (another one: a before-and-after bench)."""
    port = free_port()
    env = {**environment, "WEB_CONCURRENCY": str(workers), "GUNICORN_THREADS": str(threads)}
    process = subprocess.Popen(
        # No worker recycling: a worker that exits takes its CPU time out of the server's count.
        [GUNICORN, "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--max-requests", "0"],
        cwd=directory,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"gunicorn did not start: {process.stderr.read()}") from None
                time.sleep(0.2)
        server_groups[port] = process.pid
        yield port
    finally:
        server_groups.pop(port, None)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def request(connection, method, path, headers, body=None):
    """(status, body, seconds). A keep-alive connection the server closed while idle (keepalive
    timeout, worker recycling) never received the request: reconnect and send it again once."""
    started = time.perf_counter()
    for attempt in range(2):
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            break
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            connection.close()
            if attempt:
                raise
    return response.status, payload, time.perf_counter() - started


def load(port, duration, clients, make_request):
    """`clients` threads with keep-alive connections call make_request(connection, index) in a
    loop for `duration` seconds; returns (latencies, statuses, elapsed). Status 0 counts requests
    that got no answer (client timeout, connection broken)."""
    latencies, statuses = [], {}
    lock = threading.Lock()
    stop_at = time.monotonic() + duration

    def client(index):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
        mine, counts = [], {}
        try:
            while time.monotonic() < stop_at:
                try:
                    status, _, seconds = make_request(connection, index)
                except OSError:
                    # Timeout or broken connection: counted as status 0, then a new connection.
                    connection.close()
                    status, seconds = 0, CLIENT_TIMEOUT
                mine.append(seconds)
                counts[status] = counts.get(status, 0) + 1
        finally:
            connection.close()
        with lock:
            latencies.extend(mine)
            for status, count in counts.items():
                statuses[status] = statuses.get(status, 0) + count

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, statuses, time.monotonic() - started


def summary(latencies, statuses, elapsed):
    ordered = sorted(latencies) or [0.0]
    return {
        "requests": len(latencies),
        "per_second": len(latencies) / elapsed,
        "median_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[int(len(ordered) * 0.95) - 1 if len(ordered) > 1 else 0] * 1000,
        "statuses": dict(sorted(statuses.items())),
    }


def bench_environment(database_url):
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_ENV": "production",
        "DJANGO_SECRET_KEY": "bench-only-" + "x" * 50,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
        # The bench measures the service, not the per-key throttle.
        "API_THROTTLE_RATE": "100000000/minute",
    }


def demo_key(environment):
    """Seed the demo data once (seed_demo --if-empty) and make a fresh key for demo-1."""
    manage(environment, "migrate", "--noinput", "-v0")
    manage(environment, "seed_demo", "--if-empty", "--orgs", "1", "--orders", "5000")
    return (
        manage(environment, "create_api_key", "demo-1", "--name", "bench").strip().splitlines()[-1]
    )


def prepare_demo():
    """The bench database (BENCH_DATABASE_URL or DEFAULT_DATABASE_URL, created and seeded on first
    use), the server environment for it and a fresh API key of demo-1: (url, environment, key)."""
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    ensure_database(database_url)
    environment = bench_environment(database_url)
    return database_url, environment, demo_key(environment)


def print_json(label, data):
    print(f"{label}: {json.dumps(data)}")
