"""Several processes, each with several threads, flushing the same findings at once: the atomic
upsert loses no occurrence. Real write concurrency needs PostgreSQL."""

import pytest
from django.db import connection

from apps.profiling.models import QueryFinding
from tests.processes import postgres_url, run_python_concurrently, script_environment

pytestmark = pytest.mark.system

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
    # No slow-query threshold in reach: on a loaded machine a SELECT may pass it and add a
    # finding of another kind beside the one N+1 under test.
    with unit_of_work(threshold=3, slow_ms=60_000) as report, connection.cursor() as cursor:
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
    except Exception as error:
        failures.append(repr(error))
    finally:
        connections.close_all()


workers = [threading.Thread(target=work, args=(thread,)) for thread in range(threads)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
# Checked once every thread is done: while others still record, the buffer is rightly not empty.
if len(findings.buffer):
    failures.append("findings left unwritten")
assert not failures, failures
print("done")
"""


@pytest.mark.skipif(not ON_POSTGRES, reason="runs in the PostgreSQL pass (DATABASE_URL set)")
@pytest.mark.django_db(transaction=True)
def test_concurrent_flushes_from_several_processes_and_threads_lose_no_occurrence():
    children = run_python_concurrently(
        CONCURRENT_FLUSHER,
        [(process, THREADS, ROUNDS) for process in range(PROCESSES)],
        script_environment(postgres_url(connection.settings_dict)),
        timeout=180,
    )
    for child in children:
        assert child.returncode == 0, child.stderr[-3000:]
        assert "done" in child.stdout

    row = QueryFinding.objects.get()
    assert row.occurrences == PROCESSES * THREADS * ROUNDS
    assert row.max_repeats == 3 + (PROCESSES - 1) + (THREADS - 1)
    assert row.total_ms > 0
    assert row.first_seen <= row.last_seen
    assert row.last_request_id.count("-") == 2
