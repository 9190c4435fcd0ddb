"""Telemetry under the real deployment: gunicorn workers recycled and reloaded, several processes
flushing into the same rows, a database that is down.

The gunicorn test runs on the database of the pass: a SQLite file of its own, or a PostgreSQL
database it creates on the pass's server and drops afterwards.
"""

import collections
import json
import os
import signal
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from apps.observability.telemetry import rows as telemetry_rows
from tests.migrated_databases import migrate
from tests.processes import (
    free_port,
    fresh_postgres_database,
    postgres_parameters,
    postgres_url,
    project_environment,
    run_python_concurrently,
    running_gunicorn,
    script_environment,
    wait_until,
)

pytestmark = pytest.mark.system

METRICS_TOKEN = "gunicorn-telemetry-token-3f9a"
AUTHORIZATION = {"Authorization": f"Bearer {METRICS_TOKEN}"}
ON_POSTGRES = connection.vendor == "postgresql"
# The mix sent to the server: path -> (expected status, how many).
MIX = {
    "/admin/login/": (200, 75),
    "/no-such-page/": (404, 45),
    "/api/v1/products/": (401, 30),
}
TOTAL = sum(count for _, count in MIX.values())


def gunicorn(environment, log_path, *arguments):
    # Generous timeouts: on a busy machine replacement workers can take seconds to boot.
    return running_gunicorn(
        environment, *arguments, log_path=log_path, startup_seconds=60, request_timeout=60
    )


@pytest.fixture
def server_database(tmp_path):
    """(DATABASE_URL, function returning the RequestMinute totals) for a fresh database."""
    if not ON_POSTGRES:
        path = tmp_path / "telemetry.sqlite3"

        def totals():
            with sqlite3.connect(path) as database:
                return read_totals(database.execute(TOTALS_QUERY).fetchone())

        yield f"sqlite:///{path}", totals
        return
    name = f"orders_telemetry_gunicorn_{os.getpid()}"
    parameters = postgres_parameters(connection.settings_dict)

    def totals():
        with psycopg.connect(dbname=name, **parameters) as database:
            return read_totals(database.execute(TOTALS_QUERY).fetchone())

    with fresh_postgres_database(connection.settings_dict, name) as url:
        yield url, totals


TOTALS_QUERY = (
    "SELECT SUM(requests), SUM(status_2xx), SUM(status_3xx), SUM(status_4xx), SUM(status_5xx), "
    + " + ".join(f"SUM(bucket_{index:02d})" for index in range(telemetry_rows.BUCKET_COUNT))
    + " FROM observability_requestminute"
)


def read_totals(row):
    requests_, *statuses, buckets = (int(value or 0) for value in row)
    return {
        "requests": requests_,
        "status": dict(zip(("2xx", "3xx", "4xx", "5xx"), statuses, strict=True)),
        "buckets": buckets,
    }


def responses_by_status(metrics_text):
    """django-prometheus' response counter per status, leaving out the /stats calls."""
    counts = collections.Counter()
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if (
                sample.name == "django_http_responses_total_by_status_view_method_total"
                and sample.labels["view"] != "stats"
            ):
                counts[int(sample.labels["status"])] += int(sample.value)
    return dict(counts)


def metric_total(metrics_text, name):
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == name
    )


def send_mix(server):
    paths = [path for path, (_, count) in MIX.items() for _ in range(count)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda path: (path, server.get(path).status_code), paths))
    return collections.Counter(statuses)


def access_lines_by_path_and_status(log_text):
    """(path, status) -> access lines in the server's output, for the paths of the mix."""
    lines = (json.loads(text) for text in log_text.splitlines() if text.startswith("{"))
    return collections.Counter(
        (line["path"], line["status"])
        for line in lines
        if line.get("logger") == "apps.observability.access" and line["path"] in MIX
    )


def test_stats_metrics_rows_and_access_lines_equal_what_was_sent_across_recycled_workers(
    server_database, tmp_path
):
    database_url, database_totals = server_database
    environment = project_environment(
        DJANGO_ENV="test",
        DATABASE_URL=database_url,
        METRICS_TOKEN=METRICS_TOKEN,
        WEB_CONCURRENCY=2,
        TELEMETRY_FLUSH_SECONDS=2,
        LOG_LEVEL="INFO",
        # Access lines held for longer than the test: only the workers' exits write them.
        LOG_ACCESS_BUFFER_SECONDS=60,
        PROMETHEUS_MULTIPROC_DIR=None,
    )
    migrated = migrate(environment)
    assert migrated.returncode == 0, migrated.stderr

    with gunicorn(
        environment, tmp_path / "gunicorn.log", "--max-requests", "30", "--max-requests-jitter", "5"
    ) as server:
        assert server.get("/stats").status_code == 401
        assert server.get("/metrics").status_code == 401

        sent = send_mix(server)

        assert sent == {(path, status): count for path, (status, count) in MIX.items()}
        booted = server.log().count("Booting worker")
        # At most 35 requests per worker: the mix needed at least five of them, two at the start.
        assert booted >= 5, f"workers were not recycled ({booted} boots)"

        # Graceful restart: gunicorn replaces every worker; each flushes as it exits.
        os.kill(server.process.pid, signal.SIGHUP)

        def stats_when_complete():
            stats = server.get("/stats", headers=AUTHORIZATION).json()
            return stats if stats["requests"] >= TOTAL else None

        stats = wait_until(stats_when_complete, 60, step=0.25)
        assert stats, f"/stats never reached {TOTAL}:\n{server.log()[-3000:]}"
        metrics_text = server.get("/metrics", headers=AUTHORIZATION).text

        assert stats["requests"] == TOTAL
        assert stats["status"] == {"2xx": 75, "3xx": 0, "4xx": 75, "5xx": 0}
        assert stats["errors"] == 0
        routes = {(route["route"], route["method"]): route["requests"] for route in stats["routes"]}
        assert routes == {
            ("/admin/login/", "GET"): 75,
            ("<unmatched>", "GET"): 45,
            ("/api/v1/products/", "GET"): 30,
        }
        assert sum(point["requests"] for point in stats["per_minute"]) == TOTAL
        assert responses_by_status(metrics_text) == {200: 75, 404: 45, 401: 30}
        assert metric_total(metrics_text, "orders_telemetry_flush_failures_total") == 0
        assert metric_total(metrics_text, "orders_telemetry_dropped_requests_total") == 0

    # After the graceful stop, the access lines (held in each worker's buffer until it exited)
    # and the rows hold exactly what was sent, status by status.
    assert access_lines_by_path_and_status((tmp_path / "gunicorn.log").read_text()) == sent
    assert database_totals() == {
        "requests": TOTAL,
        "status": {"2xx": 75, "3xx": 0, "4xx": 75, "5xx": 0},
        "buckets": TOTAL,
    }


def test_requests_are_answered_while_the_flusher_cannot_reach_the_database(tmp_path):
    unreachable = f"postgres://postgres@127.0.0.1:{free_port()}/nowhere"
    environment = project_environment(
        DJANGO_ENV="test",
        DATABASE_URL=unreachable,
        DB_CONNECT_TIMEOUT=1,
        DB_POOL_TIMEOUT=1,
        METRICS_TOKEN=METRICS_TOKEN,
        WEB_CONCURRENCY=1,
        TELEMETRY_FLUSH_SECONDS=0.5,
        LOG_LEVEL="WARNING",
        PROMETHEUS_MULTIPROC_DIR=None,
    )
    with gunicorn(environment, tmp_path / "gunicorn.log") as server:
        statuses = [server.get(path).status_code for path in ("/admin/login/", "/nope/") * 10]

        def failures():
            text = server.get("/metrics", headers=AUTHORIZATION).text
            return metric_total(text, "orders_telemetry_flush_failures_total") >= 2

        assert wait_until(failures, 30, step=0.25), server.log()[-3000:]
        # Still answering, and what could not be written is still buffered.
        assert server.get("/admin/login/").status_code == 200
        log = server.log()

    assert statuses == [200, 404] * 10
    assert "telemetry_flush_failed" in log
    assert "telemetry_buffer_full" not in log


CONCURRENT_FLUSHER = """
import django
django.setup()
from apps.observability.telemetry import aggregation as telemetry
from tests.processes import wait_until

minute, rounds, per_round = {minute}, {rounds}, {per_round}
error = RuntimeError("concurrent")
for number in range(rounds):
    for request in range(per_round):
        telemetry.record_request(
            route="/concurrent/", method="GET", status=200 + 100 * (request % 4),
            duration_ms=float(request + 1), query_count=1, db_time_ms=0.25,
            started_at=minute + 1,
        )
    telemetry.record_error(error, route="/concurrent/", method="GET", at=minute + 2)
    assert telemetry.flush_telemetry() == per_round, "flush failed"
print("done")
"""


@pytest.mark.skipif(not ON_POSTGRES, reason="runs in the PostgreSQL pass (DATABASE_URL set)")
@pytest.mark.django_db(transaction=True)
def test_concurrent_flushes_from_several_processes_lose_nothing():
    from apps.observability.telemetry.models import ErrorGroup, RequestMinute

    processes, rounds, per_round = 4, 30, 20
    minute = (int(time.time()) // 60) * 60
    children = run_python_concurrently(
        CONCURRENT_FLUSHER.format(minute=minute, rounds=rounds, per_round=per_round),
        [()] * processes,
        script_environment(postgres_url(connection.settings_dict)),
    )
    for child in children:
        assert child.returncode == 0, child.stderr[-3000:]
        assert "done" in child.stdout

    row = RequestMinute.objects.get(route="/concurrent/")
    expected = processes * rounds * per_round
    assert row.requests == expected
    assert (row.status_2xx, row.status_3xx, row.status_4xx, row.status_5xx) == (expected // 4,) * 4
    assert sum(getattr(row, name) for name in telemetry_rows.BUCKET_FIELDS) == expected
    assert row.query_count == expected
    assert row.duration_max_ms == per_round
    assert ErrorGroup.objects.get().count == processes * rounds


def worker_pids_with_resource_series(text):
    return {
        sample.labels["pid"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "orders_worker_resident_memory_bytes"
    }


def test_each_worker_exports_its_resources_by_pid_and_a_dead_workers_series_go(
    server_database, tmp_path
):
    database_url, _ = server_database
    environment = project_environment(
        DJANGO_ENV="test",
        DATABASE_URL=database_url,
        METRICS_TOKEN=METRICS_TOKEN,
        WEB_CONCURRENCY=2,
        TELEMETRY_FLUSH_SECONDS=0.5,
        PROMETHEUS_MULTIPROC_DIR=None,
    )
    migrated = migrate(environment)
    assert migrated.returncode == 0, migrated.stderr

    with gunicorn(environment, tmp_path / "gunicorn.log") as server:

        def both_workers_exported():
            server.get("/admin/login/")  # starts the flusher of the worker that answers
            pids = worker_pids_with_resource_series(
                server.get("/metrics", headers=AUTHORIZATION).text
            )
            return pids if len(pids) == 2 else None

        pids = wait_until(both_workers_exported, 30, step=0.1)
        assert pids, server.log()[-3000:]
        killed = sorted(pids)[0]
        os.kill(int(killed), signal.SIGKILL)

        def series_of_the_killed_worker_gone():
            text = server.get("/metrics", headers=AUTHORIZATION).text
            return killed not in worker_pids_with_resource_series(text) and text

        text = wait_until(series_of_the_killed_worker_gone, 30, step=0.2)

    assert text, f"worker {killed}'s series outlived it"
    for name in ("orders_worker_cpu_seconds", "orders_worker_open_fds", "orders_worker_max_fds"):
        assert sum(f'{name}{{pid="' in line for line in text.splitlines()) >= 1, name
