"""What the query inspector and silk cost per request: the orders list (50 rows) under gunicorn.

Five servers run side by side, the project's settings and middleware as they are
(gunicorn.conf.py, DJANGO_ENV=production, 2 workers each with the project's default
GUNICORN_THREADS), differing only in these variables:

    off              NPLUSONE_SAMPLE_RATE=0 (the inspector's middleware is not installed),
                     SILK_ENABLED=false
    inspector-5%     NPLUSONE_SAMPLE_RATE=0.05 (the production default), silk off
    inspector-100%   NPLUSONE_SAMPLE_RATE=1.0, silk off
    silk-1%          SILK_ENABLED=true, SILK_SAMPLE_PERCENT=1 (the production default),
                     inspector off
    production       inspector at 5 % and silk at 1 %, as production runs

One client sends GET /api/v1/orders/?page_size=50 (API key) one request at a time, interleaving
the servers request by request (bench/observability_overhead.py's client, database set-up and
server handling are reused), and prints median and p90 latency per server and the median ratio
against `off`. Figures are printed, never judged.

A second section measures QueryInspectorMiddleware in one process around a view running five
different ORM queries on an in-memory SQLite database, so that database round trips do not drown
it (medians of thousands of calls, taken in turn): the extra microseconds of an
unsampled request and of a sampled one (each query timed and its call site found).

    .venv/bin/python bench/profiling_overhead.py [--requests 400] [--database-url URL]

The PostgreSQL database (default orders_bench_profiling on 127.0.0.1) is created, migrated and
seeded, and dropped at the end unless --keep-database.
"""

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from observability_overhead import (
    BASE_DIR,
    base_environment,
    measure,
    prepare_database,
    print_in_process_section,
    report,
    running_servers,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/orders_bench_profiling"
BASELINE = "off"
SERVERS = {
    "off": {"NPLUSONE_SAMPLE_RATE": "0", "SILK_ENABLED": "false"},
    "inspector-5%": {"NPLUSONE_SAMPLE_RATE": "0.05", "SILK_ENABLED": "false"},
    "inspector-100%": {"NPLUSONE_SAMPLE_RATE": "1.0", "SILK_ENABLED": "false"},
    "silk-1%": {"NPLUSONE_SAMPLE_RATE": "0", "SILK_ENABLED": "true", "SILK_SAMPLE_PERCENT": "1"},
    "production": {
        "NPLUSONE_SAMPLE_RATE": "0.05",
        "SILK_ENABLED": "true",
        "SILK_SAMPLE_PERCENT": "1",
    },
}
ORDERS_LIST = "/api/v1/orders/?page_size=50"


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="per server")
    parser.add_argument("--warmup", type=int, default=40, help="per server")
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def in_process_costs(calls=3000):
    """Median extra microseconds per request of QueryInspectorMiddleware, unsampled and sampled."""
    import django

    django.setup()
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.models import ContentType
    from django.core.management import call_command
    from django.http import JsonResponse
    from django.test import RequestFactory, override_settings

    from apps.profiling.middleware import QueryInspectorMiddleware

    call_command("migrate", verbosity=0)
    factory = RequestFactory()

    def five_queries(request):
        Permission.objects.count()
        list(Permission.objects.values_list("codename", flat=True)[:50])
        ContentType.objects.count()
        list(ContentType.objects.values_list("model", flat=True)[:50])
        Group.objects.exists()
        return JsonResponse({"ok": True})

    handlers = {"view alone (5 queries)": five_queries}
    # A rate that never samples in practice: the cost every unsampled request pays.
    for label, rate in (("unsampled", 1e-12), ("sampled (rate 1.0)", 1.0)):
        with override_settings(NPLUSONE_SAMPLE_RATE=rate):
            handlers[label] = QueryInspectorMiddleware(five_queries)
    # Call by call in turn, the order rotating, so that load on the machine affects all alike.
    timings = {label: [] for label in handlers}
    order = list(handlers)
    for number in range(200 + calls):
        order = order[1:] + order[:1]
        for label in order:
            request = factory.get("/bench/queries")
            started = time.perf_counter()
            handlers[label](request)
            if number >= 200:
                timings[label].append(time.perf_counter() - started)
    medians = {label: statistics.median(values) * 1e6 for label, values in timings.items()}
    baseline = medians["view alone (5 queries)"]
    print(f"\nIn-process, QueryInspectorMiddleware around the view ({baseline:.1f} us alone):")
    for label in ("unsampled", "sampled (rate 1.0)"):
        extra = medians[label] - baseline
        print(f"  {label:<22} {extra:>7.1f} us extra per request")


def run_in_process_costs(environment):
    child = {
        **environment,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "DATABASE_URL": "sqlite:///:memory:",
        "TELEMETRY_FLUSH_SECONDS": "0",
        "SILK_ENABLED": "false",
    }
    print_in_process_section(__file__, child)


def load_average():
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def main():
    arguments = parse_arguments()
    with tempfile.TemporaryDirectory(prefix="orders-profiling-bench-") as directory:
        directory = Path(directory)
        environment = base_environment(arguments.database_url, BASE_DIR)
        environment["DJANGO_SETTINGS_MODULE"] = "project.settings"
        print(
            f"python {platform.python_version()}, {os.cpu_count()} cores, "
            f"load average {load_average()} (1, 5, 15 min) at start"
        )
        key = prepare_database(arguments.database_url, environment)
        environments = {
            server: {**environment, **variables} for server, variables in SERVERS.items()
        }
        with running_servers(
            environments, directory, arguments.database_url, arguments.keep_database
        ) as ports:
            print(f"{arguments.requests} requests per server, one at a time, servers interleaved")
            samples = measure(
                ports,
                ORDERS_LIST,
                {"Authorization": f"Bearer {key}"},
                arguments.requests,
                arguments.warmup,
            )
            report(f"orders list, 50 rows  GET {ORDERS_LIST}", samples, baseline=BASELINE)
            print(f"load average after the servers: {load_average()}")
            run_in_process_costs(environment)
            print(f"\nload average at the end: {load_average()}")


if __name__ == "__main__":
    if "--in-process" in sys.argv:
        in_process_costs()
    else:
        main()
