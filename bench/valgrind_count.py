"""Instructions a command executes, counted by valgrind: the same count from run to run whatever
else the machine is doing, where seconds on a shared machine vary by tens of percent.

`instructions` counts a whole command (a process serving requests in-process through Django's
WSGI handler: what the application does). `served_instructions` counts a gunicorn worker serving
requests sent over HTTP: what the application does plus what the server does for each request
(reading and parsing it, the WSGI call, writing the response). Either counts work, not time:
code that touches many objects runs fewer instructions a second than a tight loop does.
"""

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from orders_common import free_port


def require_valgrind(option="--instructions"):
    if shutil.which("valgrind") is None:
        raise SystemExit(f"{option} needs valgrind (apt-get install -y valgrind)")


VALGRIND = ("valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null")
# A fixed hash seed: the same dict layouts, so the same count from run to run.
FIXED_HASH_SEED = {"PYTHONHASHSEED": "0"}
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
# A worker under valgrind runs many times slower: its start and each request may take that long.
SERVED_SECONDS = 600


def instructions(command, *, cwd, env=None):
    """Instructions executed by `command` (cachegrind without cache simulation), with a fixed
    hash seed: the same dict layouts, so the same count from run to run."""
    completed = subprocess.run(
        [*VALGRIND, *command],
        cwd=cwd,
        env={**(os.environ if env is None else env), **FIXED_HASH_SEED},
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", completed.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from valgrind:\n{completed.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def served_instructions(environment, path, *, cwd, calls, warm_up_calls, headers=None):
    """Instructions per request of one gunicorn worker (gunicorn.conf.py in `cwd`, one worker)
    answering `calls` GETs of `path` after `warm_up_calls`, one at a time on a keep-alive
    connection, less a second server answering the warm-up alone: the two run side by side.

    The worker's own count only (not the master's). Both servers stop with SIGTERM, so the
    worker's last flush is in both counts. A worker also wakes about once a second while it
    waits (its heartbeat): the longer counted run counts those wake-ups with its requests, a
    share small enough that twice the requests give the same count per request.
    """
    with ThreadPoolExecutor(2) as pool:
        counted, warm_up = pool.map(
            lambda requests: _worker_instructions(environment, path, headers or {}, requests, cwd),
            (warm_up_calls + calls, warm_up_calls),
        )
    return (counted - warm_up) / calls


def _worker_instructions(environment, path, headers, requests, cwd):
    port = free_port()
    with tempfile.TemporaryFile("w+") as log:
        server = subprocess.Popen(
            [
                *VALGRIND,
                *(sys.executable, GUNICORN, "-c", "gunicorn.conf.py", "--workers", "1"),
                *("--bind", f"127.0.0.1:{port}", "--max-requests", "0"),
                # The master must not take the slow worker for a stuck one.
                *("--timeout", str(SERVED_SECONDS)),
            ],
            cwd=cwd,
            env={**environment, **FIXED_HASH_SEED},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _send(port, path, headers, requests, server, log)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=SERVED_SECONDS)
        log.seek(0)
        output = log.read()
    counts = {
        int(pid): int(count.replace(",", ""))
        for pid, count in re.findall(r"==(\d+)== I\s+refs:\s+([\d,]+)", output)
    }
    counts.pop(server.pid, None)
    if len(counts) != 1:
        raise RuntimeError(f"expected one worker's count, found {counts}:\n{output[-3000:]}")
    return counts.popitem()[1]


def _send(port, path, headers, requests, server, log):
    deadline = time.monotonic() + SERVED_SECONDS
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"gunicorn did not start:\n{log.read()[-3000:]}") from None
            time.sleep(0.5)
    connection = None
    for _ in range(requests):
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=SERVED_SECONDS)
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status}")
        if response.will_close:  # a sync worker closes every connection
            connection.close()
            connection = None
    if connection is not None:
        connection.close()
