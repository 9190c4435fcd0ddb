"""manage.py scaling_audit on a database with a million order lines and 14 days of telemetry,
against the same command on an empty (migrated) database: the whole command as an operator runs
it (a fresh process: Django start-up included), then each check in-process. Figures are printed,
never judged.

    .venv/bin/python bench/scaling_audit.py [--runs 3] [--orders 85000] [--days 14] [--routes 50]

Databases: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/orders_audit_bench),
created, migrated and seeded on first use and kept for later runs: seed_demo with 4
organizations and --orders orders each (1 to 5 lines per order: about a million lines at the
default), and --days of one-minute statistics for --routes routes with their 15-minute rollup,
written as bench/ops_overview.py writes them. The baseline database is the same URL with
`_empty` appended, migrated only.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ops_overview import configure, fill_rollup
from ops_overview import seed as seed_telemetry

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/orders_audit_bench"
ORGANIZATIONS = 4


def seed_orders(orders):
    from django.core.management import call_command

    from apps.orders.models import OrderLine

    present = OrderLine.objects.count()
    if present:
        print(f"seed: {present:,} order lines already there")
        return present
    started = time.perf_counter()
    call_command(
        "seed_demo",
        orgs=ORGANIZATIONS,
        customers=2000,
        products=500,
        orders=orders,
        max_lines=5,
        batch_size=10_000,
        verbosity=0,
    )
    lines = OrderLine.objects.count()
    print(f"seed: {lines:,} order lines in {time.perf_counter() - started:.0f} s")
    return lines


def command_seconds(database_url, runs):
    """Wall time of `manage.py scaling_audit --format json` in a fresh process, `runs` times."""
    environment = {
        **{name: value for name, value in os.environ.items() if not name.startswith("DJANGO_")},
        "DATABASE_URL": database_url,
        "DJANGO_ENV": "test",
        "LOG_LEVEL": "ERROR",
    }
    timings, code = [], None
    for _ in range(runs):
        started = time.perf_counter()
        completed = subprocess.run(
            [sys.executable, "manage.py", "scaling_audit", "--format", "json"],
            cwd=PROJECT_DIR,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        timings.append(time.perf_counter() - started)
        code = completed.returncode
        if code not in (0, 1):
            raise SystemExit(f"scaling_audit exited {code}:\n{completed.stderr}")
    return timings, code


def migrate_empty(database_url):
    import psycopg

    server, _, name = database_url.rpartition("/")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        if not connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=PROJECT_DIR,
        env={**os.environ, "DATABASE_URL": database_url, "DJANGO_ENV": "test"},
        check=True,
    )


def per_check(runs):
    from django.utils import timezone

    from apps.audit.checks import CHECKS
    from apps.audit.report import CRITICAL, Scope

    scope = Scope(60, 1, CRITICAL, timezone.now())
    print(f"\n{'check':<28} {'median':>9} {'max':>9}  findings")
    total = 0.0
    for _, check in CHECKS:
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            findings = check(scope)
            timings.append((time.perf_counter() - started) * 1000)
        total += statistics.median(timings)
        print(
            f"{check.__name__:<28} {statistics.median(timings):>7.0f}ms {max(timings):>7.0f}ms  "
            f"{len(findings)}"
        )
    print(f"{'sum of medians':<28} {total:>7.0f}ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--orders", type=int, default=85_000, help="orders per organization")
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--routes", type=int, default=50)
    options = parser.parse_args()

    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    empty_url = f"{database_url}_empty"
    configure(database_url)
    import platform

    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    print(
        f"scaling audit bench: {connection.vendor}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {options.runs} runs"
    )
    lines = seed_orders(options.orders)
    seed_telemetry(options.days, options.routes, reseed=False)
    fill_rollup()
    migrate_empty(empty_url)

    baseline, _ = command_seconds(empty_url, options.runs)
    seeded, code = command_seconds(database_url, options.runs)
    base, full = statistics.median(baseline), statistics.median(seeded)
    print(f"\n{'database':<44} {'median':>8} {'min':>8} {'max':>8}")
    print(f"{'empty (baseline)':<44} {base:>7.2f}s {min(baseline):>7.2f}s {max(baseline):>7.2f}s")
    label = f"{lines:,} order lines, {options.days} d telemetry"
    print(f"{label:<44} {full:>7.2f}s {min(seeded):>7.2f}s {max(seeded):>7.2f}s")
    print(f"ratio seeded / empty: {full / base:.2f}; the seeded audit exited {code}")
    per_check(options.runs)


if __name__ == "__main__":
    main()
