"""What the observability stack costs per request: the same app with and without it, under gunicorn.

Six servers run side by side (gunicorn.conf.py, DJANGO_ENV=production, 2 workers each with the
project's default GUNICORN_THREADS):

    bare                    no request context/logging, Prometheus, telemetry, nor profiling
                            (silk, query inspector); the project's database backends
                            without Prometheus' query counting
    prometheus              bare + the Prometheus request middleware and database backend
                            (apps/observability/metrics/middleware.py, db_backends)
    telemetry               bare + TelemetryMiddleware (aggregator, flusher thread)
    context-and-logging     bare + the other apps.observability middleware (request id, one
                            JSON log line per request)
    observability           the whole observability stack (the three above), no profiling:
                            what issue 4's goal is about
    full                    the project's settings as they are: observability plus profiling
                            (silk sampling 1 %, the query inspector 5 % in production)

One client sends requests one at a time (no queueing: latency is service time), interleaving the
servers request by request so that a busy machine slows them all alike. Printed per view: median
and p90 latency per server and the median ratio against `bare`. Views: (a) a trivial JSON view,
(b) the orders list with 50 rows (API key), (c) 50 rows read by one query (bench/bench_urls.py).
Figures are printed, never judged.

A second section loads `bare`, `observability` and `full` in turn with wrk (--clients keep-alive
connections, --throughput-seconds per server and round, 5 rounds; the other servers idle) and
prints requests per second on (a) and (b): what the stack costs when the CPU is the limit, with
the server's, wrk's and everything else's share of the machine (bench/wrk_load.py).

A third section measures each middleware in-process (RequestFactory, the trivial view, mean of
thousands of calls, Prometheus in multiprocess mode as under gunicorn, access lines written by
the requests that fill their batches): microseconds a request, free of HTTP and scheduling
noise, which on a busy machine can drown the differences above.

    .venv/bin/python bench/observability_overhead.py [--requests 400] [--database-url URL]
                                                     [--throughput-seconds 5] [--clients 8]
                                                     [--log-access-level INFO]
    .venv/bin/python bench/observability_overhead.py --instructions [--calls 200] [--served]

`--instructions` runs none of the above: it counts the CPU instructions per request of views (a)
and (b) with the settings of `bare`, `observability` and `full` under valgrind (a process
serving a warm-up and `--calls` requests through Django's WSGI handler, less one serving the
warm-up alone; several minutes), with the ratio bare ÷ variant: the same count whatever else the
machine does, where times on a shared VM vary by tens of percent. `full` is the average its
samplers give: the unsampled request plus silk's share (SILK_SAMPLE_PERCENT) of what a recorded
request adds and the inspector's (NPLUSONE_SAMPLE_RATE) of what an inspected one adds, each
counted apart (`--calls` ÷ 4 requests, at least 10, for the sampled ones). With `--served`, each
count is one gunicorn worker's, answering the requests over HTTP (bench/valgrind_count.py:
`served_instructions`): what the server does for a request is in it too. Instructions are work,
not time: the observability stack's code runs fewer instructions a second than the view's, so
its ratios in time are lower (bench/README.md, issue 19 ninth round).

The PostgreSQL database (default orders_bench_observability on 127.0.0.1) is created, migrated
and seeded, and dropped at the end unless --keep-database.
"""

import argparse
import contextlib
import functools
import http.client
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from orders_common import free_port
from psycopg import sql
from valgrind_count import instructions, require_valgrind, served_instructions
from wrk_load import measure as measure_load
from wrk_load import require_wrk, run_wrk
from wsgi_calls import (
    collect_what_the_requests_left,
    freeze_as_a_worker_does,
    get_environ,
    serve_request,
    write_access_lines_from_the_requests,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/orders_bench_observability"
VARIANTS = (*("bare", "prometheus", "telemetry", "context-and-logging"), "observability", "full")
SERVER_START_SECONDS = 90
THROUGHPUT_VARIANTS = ("bare", "observability", "full")
INSTRUCTION_VARIANTS = THROUGHPUT_VARIANTS
INSTRUCTION_WARM_UP_CALLS = 50
THROUGHPUT_ROUNDS = 5
THROUGHPUT_WARMUP_SECONDS = 1.0
# port -> process group of the gunicorn serving it, for the CPU accounting of the throughput.
server_groups = {}

# A settings module per variant, generated into a temporary directory: the project's settings
# minus the parts of the stack the variant leaves out.
SETTINGS_MODULE = """
import os

from project.settings import *  # noqa: F403
from project.settings import DATABASES, MIDDLEWARE

VARIANT = os.environ["OBSERVABILITY_BENCH_VARIANT"]
ROOT_URLCONF = "observability_bench_urls"


def part_of(entry):
    if entry.startswith(("django_prometheus.", "apps.observability.metrics.middleware.")):
        return "prometheus"
    if entry.startswith("apps.observability.telemetry.middleware."):
        return "telemetry"
    if entry.startswith(("silk.", "apps.profiling.")):
        return "profiling"
    if entry.startswith("apps.observability.") and not entry.endswith(".ProbeMiddleware"):
        return "context-and-logging"
    return None


if VARIANT == "observability":
    MIDDLEWARE = [entry for entry in MIDDLEWARE if part_of(entry) != "profiling"]
elif VARIANT != "full":
    MIDDLEWARE = [entry for entry in MIDDLEWARE if part_of(entry) in (None, VARIANT)]
if VARIANT not in ("prometheus", "observability", "full"):
    # The backend the Prometheus one builds on (the project's on PostgreSQL, Django's on SQLite),
    # without counting queries.
    for database in DATABASES.values():
        vendor = database["ENGINE"].rsplit(".", 1)[1]
        database["ENGINE"] = (
            "apps.common.db_backends.postgresql"
            if vendor == "postgresql"
            else "django.db.backends." + vendor
        )
"""
URLS_MODULE = """
from bench.bench_urls import urlpatterns as bench_urlpatterns
from project.urls import urlpatterns as project_urlpatterns

urlpatterns = bench_urlpatterns + project_urlpatterns
"""


MIDDLEWARE_MEASURED = (
    "apps.observability.metrics.middleware.PrometheusBeforeMiddleware",
    "apps.observability.metrics.middleware.PrometheusAfterMiddleware",
    "apps.observability.telemetry.middleware.TelemetryMiddleware",
    "apps.observability.logging.middleware.RequestContextMiddleware",
    "apps.profiling.silk_middleware.SilkyMiddleware",
    "apps.profiling.middleware.QueryInspectorMiddleware",
)


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="per view and server")
    parser.add_argument("--warmup", type=int, default=40, help="per view and server")
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument(
        "--throughput-seconds", type=float, default=5.0, help="per server and round; 0: skip"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (throughput)")
    parser.add_argument(
        "--log-access-level",
        choices=["INFO", "WARNING", "ERROR"],
        default="INFO",
        help="LOG_ACCESS_LEVEL of every server (INFO: an access line per request)",
    )
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--calls", type=int, default=200, help="with --instructions")
    parser.add_argument(
        "--served",
        action="store_true",
        help="with --instructions: count a gunicorn worker answering over HTTP",
    )
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    # Internal, for --instructions: serve the warm-up and --calls requests of one path.
    parser.add_argument("--serve", metavar="PATH", help=argparse.SUPPRESS)
    return parser.parse_args()


def in_process_costs(calls=3000):
    """Mean extra microseconds per request of each middleware around a trivial view (the mean:
    a batch of access lines is written by every MAX_PENDING_LINES-th request)."""
    import django

    django.setup()
    write_access_lines_from_the_requests()
    from django.core.exceptions import MiddlewareNotUsed
    from django.http import JsonResponse
    from django.test import RequestFactory
    from django.utils.module_loading import import_string

    factory = RequestFactory()

    def trivial(request):
        return JsonResponse({"ok": True})

    def mean_microseconds(handler):
        for _ in range(200):
            handler(factory.get("/bench/pid")).close()
        timings = []
        for _ in range(calls):
            request = factory.get("/bench/pid")
            started = time.perf_counter()
            # Closed as a server closes it once sent: the access line is written then.
            handler(request).close()
            timings.append(time.perf_counter() - started)
        return statistics.fmean(timings) * 1e6

    baseline = mean_microseconds(trivial)
    print(f"\nIn-process, mean extra per request over the bare view ({baseline:.1f} us):")
    for entry in MIDDLEWARE_MEASURED:
        try:
            middleware = import_string(entry)(trivial)
        except (ImportError, MiddlewareNotUsed):
            continue
        extra = mean_microseconds(middleware) - baseline
        print(f"  {entry.rsplit('.', 1)[1]:<30} {extra:>7.1f} us")


def run_in_process_costs(environment, directory):
    child = {
        **environment,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "PROMETHEUS_MULTIPROC_DIR": str(directory / "prometheus"),
        # A flusher as under gunicorn (its cycle does not come round during the run): the
        # Prometheus request series wait for it, as in production.
        "TELEMETRY_FLUSH_SECONDS": "3600",
    }
    (directory / "prometheus").mkdir(exist_ok=True)
    print_in_process_section(__file__, child)


def print_in_process_section(script, environment):
    """Runs `script --in-process` in a fresh process with `environment`; prints its output."""
    completed = subprocess.run(
        [sys.executable, script, "--in-process"],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    print(completed.stdout, end="")


def base_environment(database_url, module_directory):
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "DB_", "DATABASE_", "REDIS_", "LOG_", "SENTRY_"))
    }
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    environment.update(
        DJANGO_SETTINGS_MODULE="observability_bench_settings",
        OBSERVABILITY_BENCH_VARIANT="full",
        PYTHONPATH=f"{module_directory}{os.pathsep}{BASE_DIR}",
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY="bench-only-secret-key-" + "o" * 40,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DATABASE_URL=database_url,
        WEB_CONCURRENCY="2",
        LOG_LEVEL="INFO",
        # One client key sends every request: keep throttling out of the figures.
        API_THROTTLE_RATE="100000000/minute",
    )
    return environment


def manage(environment, *arguments):
    completed = subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", *arguments],
        cwd=BASE_DIR,
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    )
    return completed.stdout


def prepare_database(database_url, environment):
    """Create the database, migrate it, and seed one organization; returns its API key."""
    name = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(database_url, dbname="postgres", autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    manage(environment, "migrate", "--noinput", "--verbosity", "0")
    manage(
        environment,
        *("seed_demo", "--orgs", "1", "--customers", "30", "--products", "30"),
        *("--orders", "200", "--max-lines", "3"),
    )
    manage(
        environment,
        "shell",
        "--command",
        "from django.contrib.auth.models import Permission\n"
        "from django.contrib.contenttypes.models import ContentType\n"
        "kind, _ = ContentType.objects.get_or_create(app_label='bench', model='row')\n"
        "Permission.objects.bulk_create([Permission(content_type=kind, codename=f'bench_{n}',"
        " name=f'Bench row {n}') for n in range(50)], ignore_conflicts=True)\n",
    )
    # seed_demo no longer prints a key: a fresh one for its organization.
    created = manage(environment, "create_api_key", "demo-1", "--name", "bench")
    return created.strip().splitlines()[-1]


def drop_database(database_url):
    name = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(database_url, dbname="postgres", autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def start_server(environment, variant, log_directory):
    port = free_port()
    environment = {**environment, "OBSERVABILITY_BENCH_VARIANT": variant, "PORT": str(port)}
    log = open(log_directory / f"{variant}.log", "w")  # noqa: SIM115 - closed with the server
    process = subprocess.Popen(
        # No worker recycling: a worker that exits takes its CPU time out of the server's count.
        [
            *(str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py"),
            *("--bind", f"127.0.0.1:{port}", "--max-requests", "0"),
        ],
        cwd=BASE_DIR,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server_groups[port] = process.pid  # its own session: the group of its workers too
    return process, port, log


def wait_until_serving(port, process, log_path):
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited early:\n{log_path.read_text()[-3000:]}")
        try:
            status, _ = request(port, "/health", {})
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not start:\n{log_path.read_text()[-3000:]}")


def stop_server(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def request(port, path, headers):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers={"Host": "127.0.0.1", **headers})
        response = connection.getresponse()
        body = response.read()
        return response.status, body
    finally:
        connection.close()


def measure(ports, path, headers, count, warmup):
    """Latencies (ms) per variant, sending to the servers in turn, one request at a time."""
    samples = {variant: [] for variant in ports}
    order = list(ports)
    for number in range(warmup + count):
        order = order[1:] + order[:1]  # no server always goes first
        for variant in order:
            started = time.perf_counter()
            status, body = request(ports[variant], path, headers)
            elapsed = (time.perf_counter() - started) * 1000
            if status != 200:
                raise RuntimeError(f"{variant} {path}: {status} {body[:200]!r}")
            if number >= warmup:
                samples[variant].append(elapsed)
    return samples


def measure_throughput(ports, path, headers, seconds, clients):
    """Requests per second per variant, and the server's and wrk's share of the machine: each
    server loaded alone in turn, for each round."""
    rates = {variant: [] for variant in THROUGHPUT_VARIANTS}
    cpu = {variant: [] for variant in THROUGHPUT_VARIANTS}
    order = list(THROUGHPUT_VARIANTS)
    script = "".join(
        f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}\n"
        for name, value in {"Host": "127.0.0.1", **headers}.items()
    )
    for variant in order:
        run_wrk(f"http://127.0.0.1:{ports[variant]}{path}", clients, THROUGHPUT_WARMUP_SECONDS)
    for _ in range(THROUGHPUT_ROUNDS):
        for variant in order:
            url = f"http://127.0.0.1:{ports[variant]}{path}"
            result = measure_load(
                run_wrk, server_groups[ports[variant]], url, clients, seconds, script
            )
            if result["errors"]:
                raise RuntimeError(f"{variant} {path}: errors {result['errors']}")
            rates[variant].append(result["rps"])
            cpu[variant].append(
                (
                    result["cpu_ms_per_request"],
                    result["server_cpu"],
                    result["client_cpu"],
                    result["others"],
                )
            )
        order = order[1:] + order[:1]
    return rates, cpu


def report_throughput(title, rates, cpu):
    bare = statistics.median(rates["bare"])
    bare_cpu = statistics.median(values[0] for values in cpu["bare"])
    print(f"\n{title}")
    print(
        f"  {'server':<15} {'requests/s':>10} {'per round':>30} {'ratio':>7} "
        f"{'CPU ms/req':>10} {'CPU ratio':>9} {'server CPU':>10} {'wrk CPU':>8} {'others':>7}"
    )
    for variant, values in rates.items():
        median = statistics.median(values)
        rounds = ", ".join(f"{value:.0f}" for value in values)
        per_request, server, client, others = (
            statistics.median(shares) for shares in zip(*cpu[variant], strict=True)
        )
        # bare's CPU per request over this server's: the throughput ratio when the server has the
        # CPU to itself, whatever other work takes on a shared machine.
        print(
            f"  {variant:<15} {median:>10.0f} {rounds:>30} {median / bare:>7.3f} "
            f"{per_request:>10.3f} {bare_cpu / per_request:>9.3f} "
            f"{server:>10.0%} {client:>8.0%} {others:>7.0%}"
        )


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)]


def report(title, samples, baseline="bare"):
    """Median and p90 latency per server, and the median's ratio to the `baseline` server's."""
    reference = statistics.median(samples[baseline])
    print(f"\n{title}")
    print(f"  {'server':<23} {'median ms':>10} {'p90 ms':>8} {'ratio':>7}")
    for variant, values in samples.items():
        median = statistics.median(values)
        print(
            f"  {variant:<23} {median:>10.2f} {percentile(values, 0.9):>8.2f} "
            f"{median / reference:>7.3f}"
        )


@contextlib.contextmanager
def running_servers(environments, directory, database_url, keep_database):
    """A gunicorn per name of `environments` (name -> environment), all serving: yields their
    ports by name. At the end every server is stopped and the bench database dropped, unless
    `keep_database`."""
    servers = {}
    try:
        for name, environment in environments.items():
            servers[name] = start_server(environment, name, directory)
        for name, (process, port, _) in servers.items():
            wait_until_serving(port, process, directory / f"{name}.log")
        yield {name: port for name, (_, port, _) in servers.items()}
    finally:
        for process, _, log in servers.values():
            stop_server(process)
            log.close()
        if not keep_database:
            drop_database(database_url)


def views_to_measure(key):
    """(title, path, headers) of each view."""
    return [
        ("(a) trivial JSON view  GET /bench/pid", "/bench/pid", {}),
        (
            "(b) orders list, 50 rows  GET /api/v1/orders/?page_size=50",
            "/api/v1/orders/?page_size=50",
            {"Authorization": f"Bearer {key}"},
        ),
        ("(c) one query, 50 rows  GET /bench/rows", "/bench/rows", {}),
    ]


def serve(path, calls):
    """--serve: the warm-up and `calls` requests of `path` through Django's WSGI handler, with
    BENCH_AUTHORIZATION as the Authorization header, closed as a server closes them."""
    import random

    import django

    random.seed(0)
    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    handler = WSGIHandler()
    freeze_as_a_worker_does()
    write_access_lines_from_the_requests()
    path_info, _, query = path.partition("?")
    authorization = os.environ.get("BENCH_AUTHORIZATION")
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    for _ in range(INSTRUCTION_WARM_UP_CALLS + calls):
        serve_request(handler, get_environ(path_info, query=query, headers=headers))
    collect_what_the_requests_left()


def count_instructions(arguments, environment, directory, key):
    """Instructions per request of views (a) and (b) for each of INSTRUCTION_VARIANTS; `full` as
    the expectation over its samplers (`expected_full_instructions`)."""
    require_valgrind()
    silk_share, inspector_share = sampling_shares(environment)
    where = "one gunicorn worker answering over HTTP" if arguments.served else "in-process"
    print(
        f"Instructions per request ({arguments.calls} requests after "
        f"{INSTRUCTION_WARM_UP_CALLS} of warm-up), valgrind, {where}"
    )
    per_request = served_instructions_per_request if arguments.served else instructions_per_request
    for title, path, headers in views_to_measure(key)[:2]:
        print(f"\n{title}")
        counts = {}
        count = functools.partial(per_request, environment, directory, path, headers)
        for variant in INSTRUCTION_VARIANTS:
            if variant == "full":
                counts[variant] = expected_full_instructions(
                    count, arguments.calls, silk_share, inspector_share
                )
            else:
                counts[variant] = count(variant, arguments.calls)
            print(
                f"  {variant:<14} {counts[variant]:>13,.0f}  "
                f"bare / {variant}: {counts['bare'] / counts[variant]:.3f}",
                flush=True,
            )


def sampling_shares(environment):
    """(share of requests silk records, share the query inspector inspects) under `full`, as the
    project's settings compute them for the bench's environment."""
    printed = manage(
        {**environment, "OBSERVABILITY_BENCH_VARIANT": "full"},
        "shell",
        "--command",
        "from django.conf import settings; "
        "print(settings.SILK_SAMPLE_PERCENT / 100, settings.NPLUSONE_SAMPLE_RATE)",
    )
    silk_share, inspector_share = map(float, printed.split()[-2:])
    return silk_share, inspector_share


def expected_full_instructions(count, calls, silk_share, inspector_share):
    """`full` per request as its samplers make it on average: the unsampled request, plus each
    sampler's share of what a sampled request adds.

    A few hundred requests hold too few sampled ones to give the average (at 1 % a run of 200
    records anything from none to four), so each kind is counted apart: every request unsampled
    (silk at 0 %, the inspector installed at a rate that never comes up), every request recorded
    by silk, every request inspected.
    """
    never = "1e-12"
    sampled_calls = max(calls // 4, 10)
    unsampled = count("full", calls, SILK_SAMPLE_PERCENT="0", NPLUSONE_SAMPLE_RATE=never)
    recorded = count("full", sampled_calls, SILK_SAMPLE_PERCENT="100", NPLUSONE_SAMPLE_RATE=never)
    inspected = count("full", sampled_calls, SILK_SAMPLE_PERCENT="0", NPLUSONE_SAMPLE_RATE="1")
    for name, value in (
        ("unsampled", unsampled),
        ("recorded", recorded),
        ("inspected", inspected),
    ):
        print(f"  full, {name:<8} {value:>13,.0f}  (+{value - unsampled:,.0f})")
    print(
        f"  full: unsampled + {silk_share:g} x recorded's extra + "
        f"{inspector_share:g} x inspected's extra"
    )
    return (
        unsampled + silk_share * (recorded - unsampled) + inspector_share * (inspected - unsampled)
    )


def instructions_per_request(environment, directory, path, headers, variant, calls, **overrides):
    """Instructions of `calls` requests of `path` after the warm-up, less the warm-up alone."""
    counts = []
    for served_calls in (calls, 0):
        child = {
            **environment,
            "OBSERVABILITY_BENCH_VARIANT": variant,
            # As under gunicorn (gunicorn.conf.py), one directory per process.
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(dir=directory),
            # A flusher whose cycle does not come round during the run.
            "TELEMETRY_FLUSH_SECONDS": "3600",
            "BENCH_AUTHORIZATION": headers.get("Authorization", ""),
            **overrides,
        }
        command = [sys.executable, __file__, "--serve", path, "--calls", str(served_calls)]
        counts.append(instructions(command, cwd=BASE_DIR, env=child))
    return (counts[0] - counts[1]) / calls


def served_instructions_per_request(
    environment, directory, path, headers, variant, calls, **overrides
):
    """`instructions_per_request` for one gunicorn worker answering over HTTP: the server's work
    for each request counted too (valgrind_count.served_instructions)."""
    child = {
        **environment,
        "OBSERVABILITY_BENCH_VARIANT": variant,
        # A flusher whose cycle does not come round during the run; gunicorn.conf.py gives each
        # server its Prometheus directory.
        "TELEMETRY_FLUSH_SECONDS": "3600",
        **overrides,
    }
    return served_instructions(
        child,
        path,
        cwd=BASE_DIR,
        calls=calls,
        warm_up_calls=INSTRUCTION_WARM_UP_CALLS,
        headers=headers,
    )


def main():
    arguments = parse_arguments()
    if arguments.serve:
        serve(arguments.serve, arguments.calls)
        return
    with tempfile.TemporaryDirectory(prefix="orders-observability-bench-") as directory:
        directory = Path(directory)
        (directory / "observability_bench_settings.py").write_text(SETTINGS_MODULE)
        (directory / "observability_bench_urls.py").write_text(URLS_MODULE)
        environment = base_environment(arguments.database_url, directory)
        environment["LOG_ACCESS_LEVEL"] = arguments.log_access_level
        print(f"python {platform.python_version()}, {os.cpu_count()} cores, load {os.getloadavg()}")
        key = prepare_database(arguments.database_url, environment)
        if arguments.instructions:
            try:
                count_instructions(arguments, environment, directory, key)
            finally:
                if not arguments.keep_database:
                    drop_database(arguments.database_url)
            return
        environments = dict.fromkeys(VARIANTS, environment)
        with running_servers(
            environments, directory, arguments.database_url, arguments.keep_database
        ) as ports:
            views = views_to_measure(key)
            print(f"{arguments.requests} requests per view and server, one at a time")
            for title, path, headers in views:
                report(title, measure(ports, path, headers, arguments.requests, arguments.warmup))
            if arguments.throughput_seconds > 0:
                require_wrk()
                print(
                    f"\nThroughput (wrk): {arguments.clients} keep-alive connections, "
                    f"{arguments.throughput_seconds:g} s per server and round, "
                    f"{THROUGHPUT_ROUNDS} rounds, one server loaded at a time"
                )
                for title, path, headers in views[:2]:
                    rates, cpu = measure_throughput(
                        ports, path, headers, arguments.throughput_seconds, arguments.clients
                    )
                    report_throughput(title, rates, cpu)
            run_in_process_costs(environment, directory)
            print(f"\nload after: {os.getloadavg()}")


if __name__ == "__main__":
    if "--in-process" in sys.argv:
        in_process_costs()
    else:
        main()
