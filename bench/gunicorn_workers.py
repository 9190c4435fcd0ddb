"""Choose gunicorn's worker class and threads: sync against gthread under the same load.

Starts the real server (gunicorn.conf.py, project.wsgi, DJANGO_ENV=production) once per
configuration, from a copy of the working tree taken at start (others keep editing it, and every
configuration must run the same code). Loads it from 127.0.0.1 with wrk (or a Python keep-alive
client when wrk is missing) and prints requests/s, latency percentiles, errors and the ratio
against sync measured in the same round. Figures are printed, never judged: the decision is
written in bench/README.md.

    .venv/bin/python bench/gunicorn_workers.py [--duration 10] [--rounds 1] [--concurrency 8 32]
"""

import argparse
import contextlib
import http.client
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from orders_common import bench_environment, ensure_database, free_port
from wrk_load import measure, run_wrk

BASE_DIR = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/orders_bench"
# (label, GUNICORN_THREADS): gunicorn.conf.py picks the gthread worker when threads > 1.
CONFIGS = [("sync", 1), ("gthread-2", 2), ("gthread-4", 4), ("gthread-8", 8)]
VIEWS = {
    "trivial": "/health",  # ProbeMiddleware answers it: almost pure framework CPU
    "rows50": "/bench/rows",  # one query, 50 rows, full middleware stack
    "io20ms": "/bench/io-wait",  # SELECT pg_sleep(0.02): waits, barely uses CPU
}
SEED_ROWS = 50
# Left out of the snapshot of the working tree: the server needs none of it.
SNAPSHOT_IGNORE = shutil.ignore_patterns(
    ".venv", ".git", ".*_cache", "__pycache__", ".hypothesis", "*.sqlite3*", "staticfiles", "tests"
)
SERVER_START_TIMEOUT = 60


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds per view per server")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the whole matrix")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--client", choices=["wrk", "python"], default=None)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL database for the bench; created and migrated if missing",
    )
    return parser.parse_args()


def server_environment(database_url, threads=None):
    environment = bench_environment(database_url)
    environment["DJANGO_SETTINGS_MODULE"] = "bench.bench_settings"
    if threads is not None:
        environment["GUNICORN_THREADS"] = str(threads)
    return environment


def snapshot_tree(destination):
    """Copy the working tree, so that a run measures one version of the code throughout."""
    shutil.copytree(BASE_DIR, destination, ignore=SNAPSHOT_IGNORE)
    completed = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    return completed.stdout.strip() or "unknown"


def run_django(tree, environment, *arguments):
    subprocess.run([str(VENV_BIN / "python"), *arguments], cwd=tree, env=environment, check=True)


def prepare_database(tree, database_url, environment):
    """Create the bench database if missing, migrate it and make sure it holds enough rows."""
    ensure_database(database_url)
    run_django(tree, environment, "manage.py", "migrate", "--noinput", "--verbosity", "0")
    seed = (
        "from django.contrib.auth.models import Permission\n"
        "from django.contrib.contenttypes.models import ContentType\n"
        "kind, _ = ContentType.objects.get_or_create(app_label='bench', model='row')\n"
        f"for number in range({SEED_ROWS}):\n"
        "    Permission.objects.get_or_create(content_type=kind, codename=f'bench_row_{number}',"
        " defaults={'name': f'Bench row {number}'})\n"
    )
    run_django(tree, environment, "manage.py", "shell", "--verbosity", "0", "--command", seed)


def server_settings(tree, environment):
    """What the server will actually run with, read from settings rather than recomputed."""
    script = (
        "import json, django, gunicorn\n"
        "from django.conf import settings\n"
        "print(json.dumps({'workers': settings.WEB_CONCURRENCY,"
        " 'pool_max': settings.DB_POOL_MAX_SIZE, 'django': django.get_version(),"
        " 'gunicorn': gunicorn.__version__,"
        " 'middleware': [name.rsplit('.', 1)[-1] for name in settings.MIDDLEWARE]}))\n"
    )
    completed = subprocess.run(
        [str(VENV_BIN / "python"), "-c", script],
        cwd=tree,
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(completed.stdout)


def get_json(port, path):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


@contextlib.contextmanager
def running_server(tree, environment, workers, log_path):
    """Run gunicorn in its own process group until the block ends, however it ends."""
    port = free_port()
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [
                str(VENV_BIN / "gunicorn"),
                "-c",
                "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                # Recycling workers every ~2000 requests would make the faster configuration
                # pay for more worker restarts; the comparison is about serving, not recycling.
                "--max-requests",
                "0",
                "project.wsgi:application",
            ],
            cwd=tree,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_workers(server, port, workers, log_path)
        yield port, server.pid  # the server's process group id, thanks to start_new_session
    finally:
        stop_process_group(server)


def wait_for_workers(server, port, workers, log_path):
    """Wait until every worker has answered once, so that no measurement includes a boot."""
    pids = set()
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while len(pids) < workers:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}, see {log_path}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(pids)} of {workers} workers answered, see {log_path}")
        with contextlib.suppress(OSError, http.client.HTTPException, ValueError):
            status, body = get_json(port, "/bench/pid")
            if status == 200:
                pids.add(body["pid"])
                continue
        time.sleep(0.1)


def stop_process_group(process):
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def load_with_python(url, connections, duration):
    """Fallback client: one thread per connection, HTTP/1.1 keep-alive when the server allows."""
    parts = urlsplit(url)
    deadline = time.monotonic() + duration
    latencies, errors, lock = [], {}, threading.Lock()

    def client():
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        mine, failures = [], {}
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                connection.request("GET", parts.path)
                response = connection.getresponse()
                response.read()
                mine.append((time.perf_counter() - started) * 1000)
                if response.status >= 400:
                    failures["status"] = failures.get("status", 0) + 1
            except (OSError, http.client.HTTPException):
                failures["read"] = failures.get("read", 0) + 1
                connection.close()
        connection.close()
        with lock:
            latencies.extend(mine)
            for kind, count in failures.items():
                errors[kind] = errors.get(kind, 0) + count

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "requests": len(latencies),
        "seconds": time.monotonic() - started,
        "p50": cuts[49],
        "p95": cuts[94],
        "p99": cuts[98],
        "errors": errors,
    }


def count_log_problems(log_path):
    """Error lines in the server's log (access lines are INFO; errors and tracebacks are not)."""
    problems = 0
    with open(log_path, errors="replace") as log:
        for line in log:
            lowered = line.lower()
            markers = ('"level": "error"', '"level": "critical"', "traceback", "worker timeout")
            problems += any(marker in lowered for marker in markers)
    return problems


def run_round(number, args, settings, load, workdir):
    tree = workdir / "tree"
    results = []
    # Every other round runs the configurations backwards, so a drift in the machine's other
    # work does not always favour the same ones.
    for label, threads in CONFIGS if number % 2 else CONFIGS[::-1]:
        environment = server_environment(args.database_url, threads)
        log_path = workdir / f"round{number}-{label}.log"
        with running_server(tree, environment, settings["workers"], log_path) as (port, group):
            for path in VIEWS.values():
                load(
                    f"http://127.0.0.1:{port}{path}",
                    max(args.concurrency),
                    args.warmup,
                )
            for view, path in VIEWS.items():
                for connections in args.concurrency:
                    url = f"http://127.0.0.1:{port}{path}"
                    measured = measure(load, group, url, connections, args.duration)
                    measured.update(config=label, view=view, connections=connections)
                    results.append(measured)
                    print(
                        f"  round {number} {label:<10} {view:<8} c={connections:<3}"
                        f" {measured['rps']:8.1f} req/s, others {measured['others']:.0%} CPU",
                        file=sys.stderr,
                        flush=True,
                    )
        problems = count_log_problems(log_path)
        if problems:
            print(f"  {label}: {problems} error lines in {log_path}", file=sys.stderr)
        else:
            log_path.unlink()
        for result in results:
            if result["config"] == label:
                result["log"] = log_path if problems else None
    return results


def print_table(results):
    baseline = {(r["view"], r["connections"]): r["rps"] for r in results if r["config"] == "sync"}
    header = (
        f"{'config':<10} {'view':<8} {'conc':>4} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7}"
        f" {'p99 ms':>7} {'errors':>6} {'vs sync':>7} {'cpu ms/req':>10} {'others':>6}"
    )
    print(header)
    print("-" * len(header))
    order = {label: index for index, (label, _) in enumerate(CONFIGS)}
    views = list(VIEWS)
    rows = sorted(
        results, key=lambda r: (views.index(r["view"]), r["connections"], order[r["config"]])
    )
    previous = None
    for r in rows:
        if previous is not None and (r["view"], r["connections"]) != previous:
            print()
        previous = (r["view"], r["connections"])
        base = baseline.get((r["view"], r["connections"]))
        ratio = f"{r['rps'] / base:.2f}x" if base else "n/a"
        print(
            f"{r['config']:<10} {r['view']:<8} {r['connections']:>4} {r['rps']:>7.1f}"
            f" {r['p50']:>7.1f} {r['p95']:>7.1f} {r['p99']:>7.1f} {sum(r['errors'].values()):>6}"
            f" {ratio:>7} {r['cpu_ms_per_request']:>10.2f} {r['others']:>6.0%}"
        )
    kinds = {}
    for r in rows:
        for kind, count in r["errors"].items():
            kinds[kind] = kinds.get(kind, 0) + count
    if kinds:
        print("errors by kind: " + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())))
    for log in sorted({str(r["log"]) for r in rows if r["log"]}):
        print(f"server log with errors: {log}")


def main():
    args = parse_arguments()
    client = args.client or ("wrk" if shutil.which("wrk") else "python")
    load = run_wrk if client == "wrk" else load_with_python
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    workdir = Path(tempfile.mkdtemp(prefix="bench-gunicorn-"))
    try:
        started = datetime.now().astimezone()
        commit = snapshot_tree(workdir / "tree")
        environment = server_environment(args.database_url)
        environment["GIT_SHA"] = f"{commit}-snapshot"
        prepare_database(workdir / "tree", args.database_url, environment)
        settings = server_settings(workdir / "tree", environment)
        print_header(started, commit, client, args, settings)
        for number in range(1, args.rounds + 1):
            results = run_round(number, args, settings, load, workdir)
            print(f"\nround {number} of {args.rounds} (ratios are against sync in this round)")
            print_table(results)
            sys.stdout.flush()
    finally:
        shutil.rmtree(workdir / "tree", ignore_errors=True)
        try:
            workdir.rmdir()
        except OSError:  # a log with errors, or the log of an interrupted server
            print(f"server logs kept in {workdir}", file=sys.stderr)
    elapsed = datetime.now().astimezone() - started
    print(
        f"\ndone in {elapsed.total_seconds():.0f} s, load average at end"
        f" {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


def print_header(started, commit, client, args, settings):
    environment_workers = "from the environment" if "WEB_CONCURRENCY" in os.environ else "default"
    print(f"gunicorn worker bench, {started:%Y-%m-%d %H:%M %Z}, {platform.node()}")
    print(
        f"machine: {os.cpu_count()} cores, load average at start"
        f" {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(
        f"server: gunicorn {settings['gunicorn']}, Django {settings['django']},"
        f" DJANGO_ENV=production, WEB_CONCURRENCY={settings['workers']} ({environment_workers}),"
        f" DB_POOL_MAX_SIZE={settings['pool_max']}, max_requests off;"
        f" code: working tree at {started:%H:%M:%S} (HEAD {commit} plus uncommitted changes)"
    )
    print(f"middleware: {', '.join(settings['middleware'])}")
    print(
        f"client: {client} from 127.0.0.1, {args.duration:g} s per cell after {args.warmup:g} s"
        f" warm-up per view; views: " + ", ".join(f"{view}={path}" for view, path in VIEWS.items())
    )
    print(
        "columns: cpu ms/req = CPU of the gunicorn master and workers per request; others ="
        " share of the machine's CPU used by neither the server nor the client (other work on"
        " the machine, plus PostgreSQL answering the bench's queries): near 0% on a quiet"
        " machine; on a busy one other work takes whatever the server leaves, so a high figure"
        " means the server got little CPU"
    )
    for _, threads in CONFIGS:
        if threads > settings["pool_max"]:
            print(f"warning: {threads} threads > DB_POOL_MAX_SIZE={settings['pool_max']}")
    sys.stdout.flush()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)  # the server is already stopped: `finally` blocks ran on the way out
