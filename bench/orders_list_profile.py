"""The orders list of bench/orders_list.py in-process: the API and the plain view side by side,
with the SQL queries and Redis round trips of one request, and microseconds per request.

    .venv/bin/python bench/orders_list_profile.py [--rounds 15] [--calls 100]
    .venv/bin/python bench/orders_list_profile.py --profile api|plain [--calls 2000]
    .venv/bin/python bench/orders_list_profile.py --instructions [--calls 100] [--served]

The same database and settings as bench/orders_list.py (BENCH_DATABASE_URL, seeded on first use;
REDIS_URL as set in the environment, the production settings otherwise), one WSGI handler, the
views called in turn round after round so that a busy machine slows both alike. Printed: queries
and round trips per request (counted on one warm request, then checked equal over `--calls`), the
median microseconds of this process's CPU and of wall time per request of each
view, and their ratios plain / API. `--profile` runs
cProfile over one view instead and prints the top functions. `--instructions` counts the CPU
instructions per request of each view under valgrind (a process serving the warm-up and `--calls`
requests, less one serving the warm-up alone; a few minutes): the same figure from run to run
whatever else the machine does, where times on a shared VM vary by tens of percent. With
`--served`, one gunicorn worker answering over HTTP is counted instead (the server's work for each
request included: bench/valgrind_count.py).
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
sys.path.insert(0, str(BASE_DIR / "bench"))

from orders_common import prepare_demo  # noqa: E402
from valgrind_count import instructions, require_valgrind, served_instructions  # noqa: E402
from wsgi_calls import (  # noqa: E402
    freeze_as_a_worker_does,
    get_environ,
    serve_request,
    write_access_lines_from_the_requests,
)

VIEWS = {"api": ("/api/v1/orders/", "page_size=50"), "plain": ("/bench/plain-orders/", "")}
WARM_UP_CALLS = 50


def environ_for(view, key):
    path, query = VIEWS[view]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if view == "api" else {}
    return get_environ(path, query=query, headers=headers, multithread=False)


class Counters:
    """SQL queries (a connection execute wrapper) and Redis round trips (packed commands sent:
    a pipeline or a script is one)."""

    def __init__(self):
        import redis.connection
        from django.db import connection

        self.queries = 0
        self.round_trips = 0
        # For the life of the process (execute_wrapper() is a context manager).
        connection.execute_wrappers.append(self._query)
        self.statements = []
        send = redis.connection.AbstractConnection.send_packed_command

        def counted(connection, *args, **kwargs):
            self.round_trips += 1
            return send(connection, *args, **kwargs)

        redis.connection.AbstractConnection.send_packed_command = counted

    def _query(self, execute, sql, params, many, context):
        self.queries += 1
        self.statements.append(sql)
        return execute(sql, params, many, context)

    def reset(self):
        self.queries = self.round_trips = 0
        self.statements = []


def call(handler, view, key):
    serve_request(handler, environ_for(view, key))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=100, help="per view and round")
    parser.add_argument("--profile", choices=VIEWS)
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument(
        "--served",
        action="store_true",
        help="with --instructions: count a gunicorn worker answering over HTTP",
    )
    # Internal, for --instructions: serve the warm-up and --calls requests of one view, quietly.
    parser.add_argument("--serve", choices=VIEWS, help=argparse.SUPPRESS)
    parser.add_argument("--verbose", "-v", action="count", default=0, help="print the distinct SQL")
    options = parser.parse_args()
    if options.instructions:
        count_instructions(options.calls, options.served)
        return

    _, environment, key = prepare_demo()
    os.environ.update(environment)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.orders_list_settings"
    os.environ.setdefault("SILK_SAMPLE_PERCENT", "0")
    os.environ.setdefault("NPLUSONE_SAMPLE_RATE", "0")
    os.environ.setdefault("TELEMETRY_FLUSH_SECONDS", "0")
    import django

    django.setup()
    import logging

    from django.core.handlers.wsgi import WSGIHandler

    logging.disable(logging.CRITICAL)
    handler = WSGIHandler()
    freeze_as_a_worker_does()
    write_access_lines_from_the_requests()
    if options.serve:
        for _ in range(WARM_UP_CALLS + options.calls):
            call(handler, options.serve, key)
        return
    counters = Counters()
    for view in VIEWS:
        for _ in range(WARM_UP_CALLS):
            call(handler, view, key)
    print(f"load average {os.getloadavg()[0]:.2f}; REDIS_URL {os.environ.get('REDIS_URL') or '-'}")
    for view in VIEWS:
        counters.reset()
        for _ in range(options.calls):
            call(handler, view, key)
        print(
            f"  {view:<5} per request: {counters.queries / options.calls:g} SQL queries, "
            f"{counters.round_trips / options.calls:g} Redis round trips"
        )
        if options.verbose:
            for statement in dict.fromkeys(counters.statements):
                print(f"    {statement if options.verbose > 1 else statement[:300]}")
    if options.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(options.calls):
            call(handler, options.profile, key)
        profiler.disable()
        stats = pstats.Stats(profiler)
        print(f"{options.calls} requests; times below are totals over all of them")
        stats.sort_stats("cumulative").print_stats(int(os.environ.get("PROFILE_LINES", "60")))
        stats.sort_stats("tottime").print_stats(30)
        return
    # Wall time waits for PostgreSQL, Redis and the other work on the machine; this process's
    # CPU time is what the server spends, whatever the load.
    figures = {(view, clock): [] for view in VIEWS for clock in ("wall", "cpu")}
    for _ in range(options.rounds):
        for view in VIEWS:
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(options.calls):
                call(handler, view, key)
            figures[view, "wall"].append((time.perf_counter() - wall) / options.calls * 1e6)
            figures[view, "cpu"].append((time.process_time() - cpu) / options.calls * 1e6)
    medians = {name: statistics.median(values) for name, values in figures.items()}
    for view in VIEWS:
        print(
            f"  {view:<5} {medians[view, 'cpu']:7.0f} µs CPU, {medians[view, 'wall']:7.0f} µs "
            f"wall per request (medians of {options.rounds} rounds)"
        )
    print(
        f"plain / API per request: CPU {medians['plain', 'cpu'] / medians['api', 'cpu']:.2f}, "
        f"wall {medians['plain', 'wall'] / medians['api', 'wall']:.2f}"
    )
    print(f"load average after {os.getloadavg()[0]:.2f}")


def count_instructions(calls, served=False):
    require_valgrind()
    _, environment, key = prepare_demo()  # seeded before valgrind runs, not inside it
    where = "one gunicorn worker answering over HTTP" if served else "in-process"
    print(f"instructions per request ({calls} requests after {WARM_UP_CALLS} of warm-up, {where})")
    counts = {}
    for view in VIEWS:
        if served:
            counts[view] = served_view_instructions(environment, key, view, calls)
        else:
            counted = [
                instructions(
                    [sys.executable, __file__, "--serve", view, "--calls", str(count)],
                    cwd=BASE_DIR,
                )
                for count in (calls, 0)
            ]
            counts[view] = (counted[0] - counted[1]) / calls
        print(f"  {view:<5} {counts[view]:>13,.0f}", flush=True)
    print(f"plain / API per request: instructions {counts['plain'] / counts['api']:.3f}")


def served_view_instructions(environment, key, view, calls):
    """Instructions per request of `view` answered by a gunicorn worker (sync, as
    bench/orders_list.py serves it), with the in-process run's samplers and a flusher whose
    cycle does not come round during the run."""
    path, query = VIEWS[view]
    return served_instructions(
        {
            **environment,
            "DJANGO_SETTINGS_MODULE": "bench.orders_list_settings",
            "GUNICORN_THREADS": "1",
            "SILK_SAMPLE_PERCENT": os.environ.get("SILK_SAMPLE_PERCENT", "0"),
            "NPLUSONE_SAMPLE_RATE": os.environ.get("NPLUSONE_SAMPLE_RATE", "0"),
            "TELEMETRY_FLUSH_SECONDS": "3600",
        },
        f"{path}?{query}" if query else path,
        cwd=BASE_DIR,
        calls=calls,
        warm_up_calls=WARM_UP_CALLS,
        headers={"Authorization": f"Bearer {key}"} if view == "api" else {},
    )


if __name__ == "__main__":
    main()
