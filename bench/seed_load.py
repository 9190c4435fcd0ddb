"""How long seed_demo takes to load a million order lines on PostgreSQL.

Each run creates a fresh database, migrates it, then times `manage.py seed_demo --orgs 1
--orders 334000 --products 2000 --customers 20000` (about 1,000,000 order lines), with the
command's own CPU and the machine's load; the database is dropped after each run. With
--baseline-tree PATH (e.g. a `git worktree` of an older commit, run with this virtualenv) the
runs alternate between that tree and this one, so both are measured under the same load.
Figures are printed, never judged.

    .venv/bin/python bench/seed_load.py [--runs 3] [--orders 334000] [--baseline-tree PATH]

Databases: orders_bench_seed_<n> on BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432).
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

BASE_DIR = Path(__file__).resolve().parent.parent


def administer(server, statement, database):
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(sql.SQL(statement).format(sql.Identifier(database)))


def run(tree, database_url, options):
    environment = {**os.environ, "DATABASE_URL": database_url, "DJANGO_ENV": "development"}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=tree,
        env=environment,
        check=True,
    )
    command = [sys.executable, "manage.py", "seed_demo", "--orgs", "1", "-v0"]
    command += ["--orders", str(options.orders), "--products", "2000", "--customers", "20000"]
    load_before = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(command, cwd=tree, env=environment, check=True, stdout=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    command_cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (
        cpu_before.ru_utime + cpu_before.ru_stime
    )
    with psycopg.connect(database_url) as connection:
        (lines,) = connection.execute("SELECT count(*) FROM orders_orderline").fetchone()
    return {
        "seconds": seconds,
        "lines": lines,
        "command_cpu": command_cpu,
        "load": (load_before, os.getloadavg()[0]),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--orders", type=int, default=334000)
    parser.add_argument("--baseline-tree", type=Path)
    options = parser.parse_args()
    server = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    trees = {"this tree": BASE_DIR}
    if options.baseline_tree:
        trees = {"baseline": options.baseline_tree.resolve(), **trees}
    print(f"seed_demo, {options.orders} orders (3 lines each on average), {os.cpu_count()} CPUs")
    results = {name: [] for name in trees}
    for number in range(options.runs):
        for name, tree in trees.items():
            database = f"orders_bench_seed_{number}"
            administer(server, "DROP DATABASE IF EXISTS {} WITH (FORCE)", database)
            administer(server, "CREATE DATABASE {}", database)
            try:
                result = run(tree, f"{server}/{database}", options)
            finally:
                administer(server, "DROP DATABASE IF EXISTS {} WITH (FORCE)", database)
            results[name].append(result)
            print(
                f"  run {number + 1} {name:<9} {result['seconds']:7.1f} s, {result['lines']:,} "
                f"lines ({result['lines'] / result['seconds']:,.0f} lines/s), command CPU "
                f"{result['command_cpu']:.1f} s, load {result['load'][0]:.2f} -> "
                f"{result['load'][1]:.2f}",
                flush=True,
            )
    medians = {
        name: statistics.median(result["seconds"] for result in runs)
        for name, runs in results.items()
    }
    print("median: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in medians.items()))
    if options.baseline_tree:
        print(f"this tree / baseline: {medians['this tree'] / medians['baseline']:.3f}")


if __name__ == "__main__":
    main()
