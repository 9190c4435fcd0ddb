"""Concurrent clients ordering the same few hot products under gunicorn on PostgreSQL.

Prints orders/s, the status counts (409 = out of stock, expected once the stock runs out; any
5xx is a failure of the service) and checks stock left + units sold = starting stock, both from
the answers the clients got and from the database. Figures are printed, never judged on time.

    .venv/bin/python bench/orders_race.py [--duration 30] [--clients 16] [--stock 400]

Database: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/orders_bench_list).
Load stays on 127.0.0.1.
"""

import argparse
import json
import os
import random
import uuid

import psycopg
from orders_common import gunicorn, load, prepare_demo, print_json, request, summary

HOT_PRODUCTS = 3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--stock", type=int, default=400, help="starting stock per hot product")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    options = parser.parse_args()

    database_url, environment, key = prepare_demo()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    run = uuid.uuid4().hex[:8]

    with gunicorn(environment, options.workers, options.threads) as port:
        import http.client

        setup = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

        def post(path, body):
            status, payload, _ = request(setup, "POST", path, headers, json.dumps(body))
            if status != 201:
                raise SystemExit(f"POST {path}: {status} {payload[:300]!r}")
            return json.loads(payload)

        customer = post("/api/v1/customers/", {"email": f"race-{run}@example.com", "name": "Race"})
        products = [
            post(
                "/api/v1/products/",
                {
                    "sku": f"HOT-{run}-{n}",
                    "name": f"Hot {n}",
                    "price": "9.99",
                    "stock": options.stock,
                },
            )["id"]
            for n in range(HOT_PRODUCTS)
        ]
        sold_seen = dict.fromkeys(products, 0)

        def order(connection, index):
            rng = random.Random()
            chosen = rng.sample(products, rng.randint(1, HOT_PRODUCTS))
            body = {
                "customer": customer["id"],
                "lines": [{"product": p, "quantity": rng.randint(1, 3)} for p in chosen],
            }
            status, payload, seconds = request(
                connection, "POST", "/api/v1/orders/", headers, json.dumps(body)
            )
            if status == 201:
                for line in json.loads(payload)["lines"]:
                    sold_seen[line["product"]["id"]] += line["quantity"]
            return status, payload, seconds

        print(
            f"orders race: {options.clients} clients, {options.duration:.0f} s, "
            f"{HOT_PRODUCTS} hot products x {options.stock} units, "
            f"{options.workers} workers x {options.threads} threads, {os.cpu_count()} CPUs"
        )
        latencies, statuses, elapsed = load(port, options.duration, options.clients, order)
        result = summary(latencies, statuses, elapsed)
        result["orders_per_second"] = statuses.get(201, 0) / elapsed
        print_json("result", result)

        stock_left = {}
        for product in products:
            _, payload, _ = request(setup, "GET", f"/api/v1/products/{product}/", headers)
            stock_left[product] = json.loads(payload)["stock"]
    with psycopg.connect(database_url) as connection:
        sold_in_database = dict(
            connection.execute(
                "SELECT product_id, SUM(quantity) FROM orders_orderline "
                "WHERE product_id = ANY(%s) GROUP BY product_id",
                [products],
            ).fetchall()
        )
    server_errors = sum(count for status, count in statuses.items() if status >= 500)
    for product in products:
        sold = int(sold_in_database.get(product, 0))
        print(
            f"product {product}: start {options.stock}, left {stock_left[product]}, "
            f"sold {sold} (clients saw {sold_seen[product]}), "
            f"left + sold = start: {stock_left[product] + sold == options.stock}, "
            f"matches clients: {sold == sold_seen[product]}"
        )
    print(f"5xx answers: {server_errors}")


if __name__ == "__main__":
    main()
