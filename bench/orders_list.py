"""Orders list under gunicorn on PostgreSQL: the API (50 rows) beside a plain Django view
running the same query, in the same run. Figures are printed, never judged.

    .venv/bin/python bench/orders_list.py [--duration 10] [--clients 4] [--workers 2]

Database: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/orders_bench_list),
created and seeded (seed_demo, 5000 orders) on first use. Load stays on 127.0.0.1.
"""

import argparse
import os
import platform

from orders_common import gunicorn, load, prepare_demo, print_json, request, summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per view")
    parser.add_argument("--clients", type=int, default=4, help="concurrent keep-alive clients")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    options = parser.parse_args()

    _, environment, key = prepare_demo()
    environment["DJANGO_SETTINGS_MODULE"] = "bench.orders_list_settings"
    views = {
        "api /api/v1/orders/?page_size=50": (
            "/api/v1/orders/?page_size=50",
            {"Authorization": f"Bearer {key}"},
        ),
        "plain Django JsonResponse, same query": ("/bench/plain-orders/", {}),
    }
    print(
        f"orders list bench: {options.workers} sync workers, {options.clients} clients, "
        f"{options.duration:.0f} s per view, {os.cpu_count()} CPUs, {platform.python_version()}"
    )
    results = {}
    with gunicorn(environment, options.workers) as port:
        for label, (path, headers) in views.items():

            def get(connection, index, path=path, headers=headers):
                return request(connection, "GET", path, headers)

            # Warm-up: every worker connects to the database and imports the views.
            load(port, 1.0, options.clients, get)
            latencies, statuses, elapsed = load(port, options.duration, options.clients, get)
            results[label] = summary(latencies, statuses, elapsed)
            print_json(label, results[label])
    api, plain = results.values()
    print(
        f"API / plain throughput: {api['per_second'] / plain['per_second']:.2f}; "
        f"median {api['median_ms']:.1f} ms vs {plain['median_ms']:.1f} ms"
    )


if __name__ == "__main__":
    main()
