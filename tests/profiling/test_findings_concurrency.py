"""Several processes, each with several threads, flushing the same findings at once: the atomic
upsert loses no occurrence. Real write concurrency needs PostgreSQL."""

import subprocess

import pytest
from django.db import connection

from apps.profiling.models import QueryFinding
from tests.processes import PROJECT_DIR, PYTHON, project_environment

ON_POSTGRES = connection.vendor == "postgresql"
PROCESSES, THREADS, ROUNDS = 4, 3, 15

# Each thread runs ROUNDS units of work reading 3 + worker number rows one by one (a real N+1,
# one finding per unit), recording each and flushing after it, all threads of all processes at once.
CONCURRENT_FLUSHER = """
import sys
import threading

import django

django.setup()
from django.db import connection, connections

from apps.profiling import findings
from apps.profiling.inspector import unit_of_work

process, threads, rounds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
start = threading.Barrier(threads)
failures = []


def read_one_by_one(repeats):
    with unit_of_work(threshold=3) as report, connection.cursor() as cursor:
        for number in range(repeats):
            cursor.execute("SELECT %s", [number])
    return report


def work(thread):
    try:
        start.wait()
        for number in range(rounds):
            report = read_one_by_one(3 + process + thread)
            findings.record_findings(
                report, source="/concurrent/", request_id=f"{process}-{thread}-{number}"
            )
            findings.flush_findings()
        findings.flush_findings()
        if findings.pending_findings():
            failures.append("findings left unwritten")
    except Exception as error:
        failures.append(repr(error))
    finally:
        connections.close_all()


workers = [threading.Thread(target=work, args=(thread,)) for thread in range(threads)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
assert not failures, failures
print("done")
"""


def postgres_url():
    settings = connection.settings_dict
    password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
    host, port = settings["HOST"] or "127.0.0.1", settings["PORT"] or 5432
    return f"postgres://{settings['USER'] or 'postgres'}{password}@{host}:{port}/{settings['NAME']}"


@pytest.mark.skipif(not ON_POSTGRES, reason="runs in the PostgreSQL pass (DATABASE_URL set)")
@pytest.mark.django_db(transaction=True)
def test_concurrent_flushes_from_several_processes_and_threads_lose_no_occurrence():
    environment = project_environment(
        DJANGO_ENV="test",
        DJANGO_SETTINGS_MODULE="project.settings",
        DATABASE_URL=postgres_url(),
        PROMETHEUS_MULTIPROC_DIR=None,
    )
    children = [
        subprocess.Popen(
            [PYTHON, "-c", CONCURRENT_FLUSHER, str(process), str(THREADS), str(ROUNDS)],
            cwd=PROJECT_DIR,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for process in range(PROCESSES)
    ]
    outputs = [child.communicate(timeout=180) for child in children]
    for child, (stdout, stderr) in zip(children, outputs, strict=True):
        assert child.returncode == 0, stderr[-3000:]
        assert "done" in stdout

    row = QueryFinding.objects.get()
    assert row.occurrences == PROCESSES * THREADS * ROUNDS
    assert row.max_repeats == 3 + (PROCESSES - 1) + (THREADS - 1)
    assert row.total_ms > 0
    assert row.first_seen <= row.last_seen
    assert row.last_request_id.count("-") == 2
