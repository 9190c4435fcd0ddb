"""Database fault figures of this checkout, and of a baseline commit measured in the same run.

    .venv/bin/python bench/database_faults.py [--baseline REV]

For each tree (the working tree, then `git archive REV` in a temporary directory): a private
PostgreSQL primary and a `pg_basebackup -R` streaming replica on free ports, one gunicorn worker
with 8 threads in test mode, the default settings, and 4 concurrent clients. It prints what the
clients see when the replica stops (20 reports), for a report right after paying an order, with
the replica's replay paused 35 s (past DB_REPLICA_MAX_LAG_SECONDS, 30 s), and with the primary
stopped 10 s under load (clients give up after 9 s: a ReadTimeout is a request that waited
longer). About 100 s per tree; gunicorn's output goes to $TMPDIR/orders-bench-faults-PORT.log.
The pass/fail versions of these cases, with the issue's bounds, are
tests/observability/test_database_faults.py.
"""

import argparse
import concurrent.futures
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))
os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
os.environ["DJANGO_ENV"] = "test"
for variable in ("DATABASE_URL", "DATABASE_REPLICA_URLS", "REDIS_URL"):
    os.environ.pop(variable, None)

import django  # noqa: E402

django.setup()

import requests  # noqa: E402

from tests.observability.conftest import (  # noqa: E402
    ThrowawayPostgres,
    environment_for_test_mode,
    wait_until,
)
from tests.observability.test_database_faults import (  # noqa: E402
    CLIENTS,
    Client,
    Load,
    StandbyPostgres,
)
from tests.processes import free_port, stop_process_group  # noqa: E402

PRIMARY_OUTAGE_SECONDS = 10
PAUSED_SECONDS = 35


def manage(project, environment, *arguments):
    completed = subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode:
        raise RuntimeError(completed.stderr)
    return completed.stdout


def start_gunicorn(project, environment, log_path):
    with open(log_path, "w") as log:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py"],
            cwd=project,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


class Reports:
    """Sales reports over ranges no request asked for before (each reads a database)."""

    def __init__(self, client):
        self.client = client
        self.asked = 0

    def one(self):
        self.asked += 1
        end = dt.date.today() + dt.timedelta(days=1)
        start = end - dt.timedelta(days=365 - self.asked)
        started = time.monotonic()
        try:
            response = self.client.get(f"/api/v1/reports/sales/?start={start}&end={end}", 30)
        except requests.RequestException as error:
            return type(error).__name__, time.monotonic() - started, None
        return response.status_code, time.monotonic() - started, response

    def orders(self):
        status, _, response = self.one()
        if status != 200:
            return status
        return sum(day["orders"] for day in response.json()["results"])

    def under_load(self, count):
        with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
            return list(pool.map(lambda _: self.one(), range(count)))


def count(values):
    counted = {}
    for value in values:
        counted[value] = counted.get(value, 0) + 1
    return counted


def measure(project):
    primary = ThrowawayPostgres()
    replica = StandbyPostgres(primary)
    server = None
    try:
        primary.initialise()
        primary.start()
        primary.create_database("orders")
        setup = environment_for_test_mode(DATABASE_URL=primary.url("orders"))
        manage(project, setup, "migrate", "--noinput")
        manage(project, setup, "create_organization", "bench", "--name", "Bench")
        key = manage(project, setup, "create_api_key", "bench", "--name", "b").split()[-1]
        replica.initialise()
        replica.start()
        port = free_port()
        environment = environment_for_test_mode(
            DATABASE_URL=primary.url("orders"),
            DATABASE_REPLICA_URLS=replica.url("orders"),
            API_THROTTLE_RATE="100000/minute",
            WEB_CONCURRENCY=1,
            GUNICORN_THREADS=8,
            LOG_LEVEL="WARNING",
            PORT=port,
        )
        log_path = Path(tempfile.gettempdir()) / f"orders-bench-faults-{port}.log"
        server = start_gunicorn(project, environment, log_path)
        base_url = f"http://127.0.0.1:{port}"

        def answers():
            try:
                return requests.get(f"{base_url}/health", timeout=2).ok
            except requests.RequestException:
                return False

        if not wait_until(answers, 60):
            raise RuntimeError("gunicorn did not start")
        client = Client(base_url, key)
        customer = client.post("/api/v1/customers/", {"email": "c@x.io", "name": "C"}).json()
        product = client.post(
            "/api/v1/products/", {"sku": "M", "name": "M", "price": "5.00", "stock": 10**6}
        ).json()
        client.paid_order(customer["id"], product["id"])
        time.sleep(6)  # past DB_REPLICA_STICKY_SECONDS
        reports = Reports(client)

        replica.stop()
        results = reports.under_load(20)
        print(
            f"  replica stopped, 20 reports under {CLIENTS} clients: "
            f"{count(status for status, _, _ in results)}, worst "
            f"{max(seconds for _, seconds, _ in results):.2f} s"
        )
        replica.start()
        time.sleep(3)

        before = client.get("/api/v1/reports/sales/").json()["results"]
        client.paid_order(customer["id"], product["id"])
        after = client.get("/api/v1/reports/sales/").json()["results"]
        print(
            "  report right after paying an order: "
            f"{sum(day['orders'] for day in before)} orders, then "
            f"{sum(day['orders'] for day in after)}"
        )

        replica.execute("SELECT pg_wal_replay_pause()")
        before = reports.orders()
        client.paid_order(customer["id"], product["id"])
        time.sleep(PAUSED_SECONDS)
        ready = requests.get(f"{base_url}/ready", timeout=10).json()["checks"]["replica_1"]
        print(
            f"  replica replay paused {PAUSED_SECONDS} s after paying an order: the report "
            f"counts {reports.orders()} orders (before the order: {before}); /ready says "
            f"{ready['status']}: {ready['message']}"
        )
        replica.execute("SELECT pg_wal_replay_resume()")
        time.sleep(2)

        with Load(client) as load:
            time.sleep(1)
            stopped_at = time.monotonic()
            primary.stop()
            time.sleep(1)
            ready = requests.get(f"{base_url}/ready", timeout=10).status_code
            health = requests.get(f"{base_url}/health", timeout=10).status_code
            time.sleep(PRIMARY_OUTAGE_SECONDS - 2)
            primary.start()
            restarted_at = time.monotonic()
            wait_until(lambda: load.first_200_after(restarted_at), 30)
        during = [a for a in load.answers if a.started >= stopped_at and a.ended <= restarted_at]
        first_200 = load.first_200_after(restarted_at)
        print(
            f"  primary stopped {PRIMARY_OUTAGE_SECONDS} s under {CLIENTS} clients: "
            f"{len(during)} answers meanwhile {count((a.status, a.code) for a in during)}, "
            f"worst request "
            f"{max(a.seconds for a in load.answers if a.started >= stopped_at):.2f} s; "
            f"/ready {ready}, /health {health}; first 200 "
            f"{'never' if first_200 is None else f'{first_200 - restarted_at:.2f} s'} after "
            "PostgreSQL accepted connections again"
        )
    finally:
        if server is not None:
            stop_process_group(server, 15)
        replica.remove()
        primary.remove()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="a commit to measure too, e.g. main or HEAD~10")
    options = parser.parse_args()
    print(f"this tree ({REPOSITORY}):")
    measure(REPOSITORY)
    if options.baseline:
        with tempfile.TemporaryDirectory(prefix="orders-faults-baseline-") as directory:
            archive = subprocess.run(
                ["git", "archive", options.baseline],
                cwd=REPOSITORY,
                capture_output=True,
                check=True,
            )
            subprocess.run(["tar", "-x", "-C", directory], input=archive.stdout, check=True)
            print(f"baseline {options.baseline}:")
            measure(directory)


if __name__ == "__main__":
    main()
