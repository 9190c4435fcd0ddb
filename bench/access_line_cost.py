"""What each part of the observability stack costs per request, in-process, in microseconds.

Five WSGI handlers are built from the project's settings (DJANGO_ENV=production, LOG_FORMAT=json,
the real LOGGING with its handlers writing to /dev/null, Prometheus in multiprocess mode as under
gunicorn), each with a different MIDDLEWARE:

    bare           the project's middleware without the observability parts
    + context      bare + RequestContextMiddleware (request id, one JSON access line a request)
    + telemetry    bare + TelemetryMiddleware
    + prometheus   bare + PrometheusBefore/AfterMiddleware (observability/metrics/middleware.py)
    full           the project's MIDDLEWARE as it is

and called in turn with the same WSGI environ (GET /bench/pid, a trivial JSON view; `--view rows`
for /bench/rows, one query of 50 rows), round after round, so that a busy machine slows them
alike. Printed: median microseconds per request and the extra over `bare` (same run).
Back to back, code and data stay in the CPU caches; `--gap-ms 3` idles before each request, as
a server answering one client at a time does, and shows about 3 times the cost (what
observability_overhead.py sees under gunicorn).

    .venv/bin/python bench/access_line_cost.py [--rounds 30] [--calls 200] [--view pid|rows]
                                               [--gap-ms 3]
    .venv/bin/python bench/access_line_cost.py --profile context [--calls 5000]
    .venv/bin/python bench/access_line_cost.py --instructions [--calls 1000] [--view pid|rows]
                                               [--variants bare context ...] [--unclosed]

`--profile VARIANT` runs cProfile over that handler instead and prints the top functions
(cumulative and internal time). `--instructions` counts the CPU instructions per request of each
handler under valgrind (cachegrind without cache simulation; about a minute per variant): the
same count on an idle or a busy machine, so small changes show. Each variant runs twice in a
fresh process, warmed up with 300 requests, then with 0 and with `--calls` more requests; the
difference divided by `--calls` is one request. Responses are closed as a WSGI server closes
them, which is when the Prometheus response metrics and telemetry are recorded
(apps/observability/after_response.py); with `--unclosed` they are not, and the count is what
the client waits for. Access lines are written in batches, each by the request that fills it
(no writer thread: its batches would count in whatever variant runs when it wakes).

silk and the query inspector stay in every variant but sample nothing (SILK_SAMPLE_PERCENT=0,
NPLUSONE_SAMPLE_RATE=0 unless set): one request in a hundred recorded by silk would swamp the
means, and random sampling would make instruction counts differ. The database is SQLite in a
temporary file unless DATABASE_URL is set; /bench/rows needs 50 permission rows, which the script
adds when the table has fewer.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from valgrind_count import instructions, require_valgrind
from wsgi_calls import (
    collect_what_the_requests_left,
    freeze_as_a_worker_does,
    get_environ,
    serve_request,
    write_access_lines_from_the_requests,
)

BASE_DIR = Path(__file__).resolve().parent.parent
OBSERVABILITY_PARTS = {
    "context": ("apps.observability.logging.middleware.RequestContextMiddleware",),
    "telemetry": ("apps.observability.telemetry.middleware.TelemetryMiddleware",),
    "prometheus": (
        "apps.observability.metrics.middleware.PrometheusBeforeMiddleware",
        "apps.observability.metrics.middleware.PrometheusAfterMiddleware",
    ),
}
WARM_UP_CALLS = 300
VARIANTS = ("bare", "context", "telemetry", "prometheus", "full")


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=200, help="per variant and round")
    parser.add_argument("--view", choices=("pid", "rows"), default="pid")
    parser.add_argument(
        "--gap-ms", type=float, default=0.0, help="idle time before each request (cold caches)"
    )
    parser.add_argument("--profile", choices=VARIANTS)
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument(
        "--variants", nargs="+", choices=VARIANTS, default=VARIANTS, help="with --instructions"
    )
    parser.add_argument(
        "--unclosed",
        action="store_true",
        help="with --instructions: responses left unclosed, only what the client waits for",
    )
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    return parser.parse_args()


def set_up_environment(directory):
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.bench_settings",
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY="bench-only-secret-key-" + "a" * 40,
        DJANGO_ALLOWED_HOSTS="testserver",
        DJANGO_SECURE_SSL_REDIRECT="false",
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
        # A flusher as in production, whose cycle does not come round during a run: what it
        # writes (the request statistics, the Prometheus request metrics) is written at exit.
        TELEMETRY_FLUSH_SECONDS="3600",
        PROMETHEUS_MULTIPROC_DIR=str(directory / "prometheus"),
    )
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{directory / 'bench.sqlite3'}")
    # The profiling middleware stays in every variant but samples nothing: a recorded request
    # costs milliseconds (silk writes it to the database) and would swamp the means.
    os.environ.setdefault("SILK_SAMPLE_PERCENT", "0")
    os.environ.setdefault("NPLUSONE_SAMPLE_RATE", "0")
    (directory / "prometheus").mkdir()
    sys.path.insert(0, str(BASE_DIR))


def silence_log_handlers():
    """The real handlers and formatters, writing to /dev/null instead of the terminal."""
    import logging

    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)


def prepare_database(view):
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    if view != "rows":
        return
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    kind, _ = ContentType.objects.get_or_create(app_label="bench", model="row")
    Permission.objects.bulk_create(
        [Permission(content_type=kind, codename=f"bench_{n}", name=f"B {n}") for n in range(50)],
        ignore_conflicts=True,
    )


def middleware_for(variant, project_middleware):
    if variant == "full":
        return list(project_middleware)
    every_part = {entry for entries in OBSERVABILITY_PARTS.values() for entry in entries}
    keep = set(OBSERVABILITY_PARTS.get(variant, ()))
    return [entry for entry in project_middleware if entry not in every_part or entry in keep]


def build_handlers():
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    handlers = {}
    for variant in VARIANTS:
        with override_settings(MIDDLEWARE=middleware_for(variant, settings.MIDDLEWARE)):
            handlers[variant] = WSGIHandler()
    return handlers


def call(handler, path, close=True):
    environ = get_environ(path, host="testserver", headers={"HTTP_USER_AGENT": "bench"})
    serve_request(handler, environ, close)


def seconds_per_call(handler, path, calls, gap=0.0):
    if not gap:
        started = time.perf_counter()
        for _ in range(calls):
            call(handler, path)
        return (time.perf_counter() - started) / calls
    total = 0.0
    for _ in range(calls):
        time.sleep(gap)  # idle between requests, as a server answering one client at a time
        started = time.perf_counter()
        call(handler, path)
        total += time.perf_counter() - started
    return total / calls


def profile(handler, path, calls):
    import cProfile
    import pstats

    for _ in range(200):
        call(handler, path)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        call(handler, path)
    profiler.disable()
    stats = pstats.Stats(profiler)
    print(f"{calls} requests; times below are totals over all of them")
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(35)
    if os.environ.get("PROFILE_CALLEES"):
        stats.print_callees(*os.environ["PROFILE_CALLEES"].split(","))


def instructions_of(variant, view, calls, unclosed):
    """Instructions valgrind counts for a process serving WARM_UP_CALLS + `calls` requests."""
    return instructions(
        [
            *(sys.executable, __file__, "--serve", variant, "--view", view, "--calls", str(calls)),
            *(["--unclosed"] if unclosed else []),
        ],
        cwd=BASE_DIR,
        env={**os.environ, "SILK_SAMPLE_PERCENT": "0", "NPLUSONE_SAMPLE_RATE": "0"},
    )


def count_instructions(view, calls, variants, unclosed):
    require_valgrind()
    counted = "before the response is closed" if unclosed else "including the work after it"
    print(
        f"GET /bench/{view}: instructions per request ({calls} requests after a warm-up), {counted}"
    )
    print(f"  {'variant':<12} {'instructions':>13} {'extra':>9}")
    counts = {}
    for variant in dict.fromkeys(("bare", *variants)):
        extra = instructions_of(variant, view, calls, unclosed) - instructions_of(
            variant, view, 0, unclosed
        )
        counts[variant] = extra / calls
        print(
            f"  {variant:<12} {counts[variant]:>13,.0f} {counts[variant] - counts['bare']:>9,.0f}",
            flush=True,
        )


def serve(handler, path, calls, close):
    for _ in range(WARM_UP_CALLS + calls):
        call(handler, path, close)
    collect_what_the_requests_left()


def main():
    arguments = parse_arguments()
    if arguments.instructions:
        count_instructions(arguments.view, arguments.calls, arguments.variants, arguments.unclosed)
        return
    with tempfile.TemporaryDirectory(prefix="access-line-cost-") as directory:
        set_up_environment(Path(directory))
        import django

        django.setup()
        silence_log_handlers()
        prepare_database(arguments.view)
        from django.db import connections

        handlers = build_handlers()
        freeze_as_a_worker_does()
        write_access_lines_from_the_requests()
        path = f"/bench/{arguments.view}"
        if arguments.serve:
            serve(handlers[arguments.serve], path, arguments.calls, close=not arguments.unclosed)
            return
        if arguments.profile:
            profile(handlers[arguments.profile], path, arguments.calls)
            return
        for handler in handlers.values():
            seconds_per_call(handler, path, 100)  # warm-up: imports, caches, connections
        gap = arguments.gap_ms / 1000
        samples = {variant: [] for variant in VARIANTS}
        order = list(VARIANTS)
        for _ in range(arguments.rounds):
            order = order[1:] + order[:1]
            for variant in order:
                samples[variant].append(
                    seconds_per_call(handlers[variant], path, arguments.calls, gap) * 1e6
                )
        connections.close_all()
        bare = statistics.median(samples["bare"])
        print(
            f"GET {path}: {arguments.rounds} rounds x {arguments.calls} calls per variant, "
            f"{arguments.gap_ms:g} ms idle before each, median of the per-round means, "
            f"load {os.getloadavg()[0]:.1f}"
        )
        print(f"  {'variant':<12} {'us/request':>11} {'extra us':>9}")
        labels = {"context": "+ context", "telemetry": "+ telemetry", "prometheus": "+ prometheus"}
        for variant in VARIANTS:
            median = statistics.median(samples[variant])
            print(f"  {labels.get(variant, variant):<12} {median:>11.1f} {median - bare:>9.1f}")


if __name__ == "__main__":
    main()
