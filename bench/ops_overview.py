"""Ops dashboards under full retention: 14 days of one-minute statistics for 50 routes (about a
million RequestMinute rows) and their 15-minute rollup, then the render time of the overview and
routes pages per window. Figures are printed, never judged.

    .venv/bin/python bench/ops_overview.py [--runs 7] [--days 14] [--routes 50] [--reseed]

Database: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/orders_ops_bench),
created, migrated and seeded in batches on first use (bulk_create; COPY on PostgreSQL), kept for
later runs (a different --days/--routes or --reseed seeds again). An empty RequestQuarterHour
rollup is filled from the minutes with the function migration 0003 uses. A SQLite URL works too
(sqlite:////tmp/orders_ops_bench.sqlite3). Pages are rendered in-process by Django's test client
as a signed-in superuser: the time is the whole request (middleware, session, queries, charts,
template), without a network hop. Each page is requested once to warm up, then --runs times.
"""

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
from pathlib import Path

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/orders_ops_bench"
BATCH_SIZE = 5000
ROUTE_PREFIX = "/api/v1/bench-"
PAGES = ("/admin/ops/", "/admin/ops/routes/")
WINDOWS = ("15m", "1h", "6h", "24h", "7d")


def configure(database_url):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_ENV", "test")  # no silk recording, no background flusher
    os.environ.setdefault("LOG_LEVEL", "ERROR")  # no access line, not even for slow requests
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    if database_url.startswith("postgres"):
        import psycopg

        server, _, name = database_url.rpartition("/")
        with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()


def row_values(rng, minute, route_number, route):
    """One RequestMinute row as field values: busier and slower routes by number, with noise,
    1 % of minutes with a 5xx, 5 % with a 4xx, latencies log-normal around the route's typical."""
    from apps.observability.telemetry import aggregation as telemetry
    from apps.observability.telemetry import rows as telemetry_rows

    requests = max(1, int(rng.gauss(5 + route_number % 20, 2)))
    buckets = [0] * telemetry_rows.BUCKET_COUNT
    typical = 8 + route_number * 2
    duration_sum = 0.0
    maximum = 0.0
    for _ in range(requests):
        duration = rng.lognormvariate(0, 0.6) * typical
        buckets[telemetry.bucket_index(duration)] += 1
        duration_sum += duration
        maximum = max(maximum, duration)
    errors = 1 if rng.random() < 0.01 else 0
    client_errors = 1 if rng.random() < 0.05 and requests > errors + 1 else 0
    return {
        "minute": minute,
        "route": route,
        "method": "GET",
        "requests": requests,
        "status_2xx": requests - errors - client_errors,
        "status_3xx": 0,
        "status_4xx": client_errors,
        "status_5xx": errors,
        "slow": sum(buckets[telemetry.bucket_index(1000) + 1 :]),
        "duration_sum_ms": duration_sum,
        "duration_max_ms": maximum,
        "query_count": requests * 3,
        "db_time_ms": duration_sum * 0.3,
        **dict(zip(telemetry_rows.BUCKET_FIELDS, buckets, strict=True)),
    }


def write_rows(rows):
    """bulk_create, or COPY on PostgreSQL: bulk_create of 60-column rows inserts about 1,200
    rows/s there (a million rows would take a quarter of an hour), COPY about 20 times that."""
    from apps.common.bulk_load import load_rows
    from apps.observability.telemetry.models import RequestMinute

    columns = list(rows[0])
    load_rows(RequestMinute, columns, ([values[column] for column in columns] for values in rows))


def seed(days, routes, reseed):
    from django.db import connection

    from apps.observability.telemetry.models import RequestMinute, RequestQuarterHour

    expected = days * 24 * 60 * routes
    # The bench's own page requests are counted too (route /admin/ops/...): not seed rows.
    present = RequestMinute.objects.filter(route__startswith=ROUTE_PREFIX).count()
    if present == expected and not reseed:
        print(f"seed: {present:,} rows already there")
        return
    started = time.perf_counter()
    RequestMinute.objects.all().delete()
    RequestQuarterHour.objects.all().delete()
    rng = random.Random(20261127)
    now = dt.datetime.now(tz=dt.UTC).replace(second=0, microsecond=0)
    first = now - dt.timedelta(days=days) + dt.timedelta(minutes=1)
    names = [f"{ROUTE_PREFIX}{number:02d}/<int:pk>/" for number in range(routes)]
    batch = []
    written = 0
    for offset in range(days * 24 * 60):
        minute = first + dt.timedelta(minutes=offset)
        batch.extend(row_values(rng, minute, number, route) for number, route in enumerate(names))
        if len(batch) >= BATCH_SIZE:
            write_rows(batch)
            written += len(batch)
            batch = []
            if written % 100_000 < BATCH_SIZE:
                print(f"seed: {written:,} of {expected:,} rows", flush=True)
    if batch:
        write_rows(batch)
        written += len(batch)
    with connection.cursor() as cursor:
        cursor.execute(
            "ANALYZE observability_requestminute"
            if connection.vendor == "postgresql"
            else "ANALYZE"
        )
    print(f"seed: {written:,} rows in {time.perf_counter() - started:.1f} s")


def fill_rollup():
    """The quarter-hour rollup of the seeded minutes, as migration 0003 fills it on a deployment
    that already holds minutes."""
    from django.db import connection

    from apps.observability.telemetry.models import RequestQuarterHour
    from apps.observability.telemetry.rollup import backfill_quarter_hours

    present = RequestQuarterHour.objects.count()
    if present:
        print(f"rollup: {present:,} quarter-hour rows already there")
        return
    started = time.perf_counter()
    written = backfill_quarter_hours()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE observability_requestquarterhour")
    print(f"rollup: {written:,} quarter-hour rows in {time.perf_counter() - started:.1f} s")


def measure(runs):
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from apps.observability.ops import queries as ops_queries

    user = get_user_model().objects.filter(username="ops-bench").first()
    if user is None:
        user = get_user_model().objects.create_superuser("ops-bench", "ops@example.com", None)
    client = Client()
    client.force_login(user)
    print(f"\n{'page':<22} {'window':>6} {'median':>9} {'min':>9} {'max':>9} {'queries':>8}")
    for path in PAGES:
        for window in WINDOWS:
            url = f"{path}?window={window}"
            assert client.get(url).status_code == 200
            timings = []
            for _ in range(runs):
                with CaptureQueriesContext(connection) as queries:
                    started = time.perf_counter()
                    response = client.get(url)
                    timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.status_code
            print(
                f"{path:<22} {window:>6} {statistics.median(timings):>7.0f}ms "
                f"{min(timings):>7.0f}ms {max(timings):>7.0f}ms {len(queries.captured_queries):>8}"
            )
    print("\ntime-series query alone (window and the one before, grouped by bucket):")
    for window in WINDOWS:
        span = ops_queries.Span.ending_at(ops_queries.WINDOWS[window])
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            with ops_queries.analytic_transaction():
                line = ops_queries.timeline(span)
            timings.append((time.perf_counter() - started) * 1000)
        print(
            f"  {window:>4}: {statistics.median(timings):7.0f} ms median, "
            f"{len(line.points)} buckets, {line.totals['requests']:,} requests"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed requests per page and window")
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--routes", type=int, default=50)
    parser.add_argument("--reseed", action="store_true", help="seed again even if present")
    options = parser.parse_args()

    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    configure(database_url)
    import platform

    from django.core.management import call_command
    from django.db import connection

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    # Migration 0003 fills the rollup from the minutes already stored: timed here on first use.
    print(f"migrate: {time.perf_counter() - started:.1f} s")
    print(
        f"ops overview bench: {connection.vendor}, {options.days} days x {options.routes} routes, "
        f"{options.runs} runs, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    seed(options.days, options.routes, options.reseed)
    fill_rollup()
    measure(options.runs)


if __name__ == "__main__":
    main()
