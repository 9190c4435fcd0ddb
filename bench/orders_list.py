"""Orders list under gunicorn on PostgreSQL: the API (50 rows) beside a plain Django view
running the same query, in the same run. Figures are printed, never judged.

    .venv/bin/python bench/orders_list.py [--duration 10] [--clients 4] [--workers 2] [--rounds 3]
                                          [--against CHECKOUT]

The client is wrk (bench/wrk_load.py), so that the load takes little of the CPU the server needs.
The two views alternate, round after round; printed per round: requests/s, the server's CPU per
request (and of it, the time in the kernel: system calls), latency, the server's and wrk's share
of the machine; then the medians of the per-round ratios API / plain of requests/s and of server
CPU per request (plain / API: what the API would reach against the plain view when the CPU is
the limit, whatever else runs on the machine).

`--against CHECKOUT` serves another checkout of the project (`git worktree add /tmp/before REV`;
it serves its own bench/orders_list_settings.py) beside this one, round after round in the same
run, and prints the ratios of each and this ÷ against per view: a before-and-after comparison
that a VM whose speed drifts from minute to minute cannot give from two runs.

Database: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/orders_bench_list),
created and seeded (seed_demo, 5000 orders) on first use. Load stays on 127.0.0.1.
"""

import argparse
import contextlib
import os
import platform
import statistics
from pathlib import Path

from orders_common import BASE_DIR, gunicorn, prepare_demo, server_groups
from wrk_load import measure, require_wrk, run_wrk

WARM_UP_PASSES = 2
# wrk sends the same request again and again; this Lua sets its headers.
HEADERS_SCRIPT = "wrk.headers['Host'] = '127.0.0.1'\n{extra}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per view and round")
    parser.add_argument("--clients", type=int, default=4, help="concurrent keep-alive connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--against",
        type=Path,
        metavar="CHECKOUT",
        help="another checkout (say, a git worktree of an earlier commit) served side by side",
    )
    options = parser.parse_args()
    require_wrk()

    _, environment, key = prepare_demo()
    environment["DJANGO_SETTINGS_MODULE"] = "bench.orders_list_settings"
    views = {
        "api": (
            "/api/v1/orders/?page_size=50",
            HEADERS_SCRIPT.format(extra=f"wrk.headers['Authorization'] = 'Bearer {key}'"),
        ),
        "plain": ("/bench/plain-orders/", HEADERS_SCRIPT.format(extra="")),
    }
    checkouts = {"this": BASE_DIR}
    if options.against is not None:
        checkouts["against"] = options.against.resolve()
    load_before = os.getloadavg()[0]
    print(
        f"orders list bench: {options.workers} sync workers, {options.clients} connections (wrk), "
        f"{options.duration:.0f} s per view and round, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load {load_before:.2f}"
    )
    if options.against is not None:
        print(f"  this checkout: {BASE_DIR}; against: {checkouts['against']} (side by side)")
    runs = [(checkout, view) for view in views for checkout in checkouts]
    rates = {run: [] for run in runs}
    cpu_per_request = {run: [] for run in runs}
    with contextlib.ExitStack() as servers:
        ports = {
            checkout: servers.enter_context(gunicorn(environment, options.workers, 1, directory))
            for checkout, directory in checkouts.items()
        }
        # Warm-up: every worker connects to the database and imports the views; on a busy
        # machine one short pass left that work in the first measured round of the API.
        for _ in range(WARM_UP_PASSES):
            for checkout, name in runs:
                path, script = views[name]
                url = f"http://127.0.0.1:{ports[checkout]}{path}"
                result = run_wrk(url, options.clients, 3, script)
                rate = result["requests"] / result["seconds"]
                print(f"  warm-up {label(checkout, name):<15} {rate:7.1f} req/s", flush=True)
        order = list(runs)
        for number in range(1, options.rounds + 1):
            for checkout, name in order:
                path, script = views[name]
                port = ports[checkout]
                url = f"http://127.0.0.1:{port}{path}"
                result = measure(
                    run_wrk, server_groups[port], url, options.clients, options.duration, script
                )
                if result["errors"]:
                    raise SystemExit(f"{name}: errors {result['errors']}")
                rates[checkout, name].append(result["rps"])
                cpu_per_request[checkout, name].append(result["cpu_ms_per_request"])
                print(
                    f"  round {number} {label(checkout, name):<15} {result['rps']:7.1f} req/s, "
                    f"{result['cpu_ms_per_request']:5.2f} server CPU ms/req "
                    f"({result['kernel_ms_per_request']:4.2f} in the kernel), p50 "
                    f"{result['p50']:6.1f} ms, p95 {result['p95']:6.1f} ms, server CPU "
                    f"{result['server_cpu']:.0%}, wrk CPU {result['client_cpu']:.0%}, "
                    f"others {result['others']:.0%}",
                    flush=True,
                )
            order.reverse()
    for checkout in checkouts:
        prefix = f"{checkout}: " if len(checkouts) > 1 else ""
        print_ratios(
            f"{prefix}API / plain throughput",
            rates[checkout, "api"],
            rates[checkout, "plain"],
        )
        # When other work takes most of the machine, requests/s says more about it than about
        # the server; the server's CPU per request does not depend on it (PostgreSQL's is not
        # counted).
        print_ratios(
            f"{prefix}plain / API server CPU per request",
            cpu_per_request[checkout, "plain"],
            cpu_per_request[checkout, "api"],
        )
    if len(checkouts) > 1:
        for name in views:
            print_ratios(
                f"{name}: this / against throughput",
                rates["this", name],
                rates["against", name],
            )
    print(f"load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f}")


def label(checkout, view):
    return view if checkout == "this" else f"{view} ({checkout})"


def print_ratios(title, numerators, denominators):
    ratios = [top / bottom for top, bottom in zip(numerators, denominators, strict=True)]
    print(
        f"{title} per round: {', '.join(f'{ratio:.2f}' for ratio in ratios)}; "
        f"median {statistics.median(ratios):.2f}"
    )


if __name__ == "__main__":
    main()
