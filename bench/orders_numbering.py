"""What the per-organization order number costs: orders/s of one organization against sixteen.

Each organization numbers its orders from one row (orders_ordernumbersequence), locked from the
moment create_order takes the number until the transaction commits, so one organization's orders
queue on it while orders of different organizations do not. Two loads, alternated round by round
on the same server:

    one-org     16 clients, all of one organization, each ordering its own product (no product
                row is shared: the number row is the only common lock)
    16-orgs     16 clients, one per organization, each ordering its own product

The ratio one-org / 16-orgs is what the number row costs under load (1.00: nothing). The client
is wrk (one connection per wrk thread, each with its own API key and body). Printed per round:
orders/s, latency, non-201 answers, the server's and wrk's CPU; then the medians, the machine's
load before and after, and a check that every organization's numbers are 1..n without a gap.
Figures are printed, never judged.

    .venv/bin/python bench/orders_numbering.py [--duration 10] [--rounds 3] [--workers 2]
        [--threads 4]

Database: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/orders_bench_numbering),
created and migrated on first use; every run adds its own organizations. Load stays on 127.0.0.1.
"""

import argparse
import json
import os
import platform
import statistics
import uuid

import psycopg
from orders_common import bench_environment, ensure_database, gunicorn, manage, server_groups
from wrk_load import measure, require_wrk, run_wrk

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/orders_bench_numbering"
CLIENTS = 16
STOCK = 1_000_000_000
# Run by `manage.py shell`: 16 organizations with a customer, 16 products and an API key each.
SETUP = """
import json
from apps.orders.models import Customer, Product
from apps.tenants.models import Organization, OrganizationAPIKey

clients = []
for index in range({clients}):
    organization = Organization.objects.create(slug=f"numbering-{run}-{{index}}", name="Bench")
    customer = Customer.objects.create(
        organization=organization, email=f"bench-{{index}}@example.com", name="Bench"
    )
    products = Product.objects.bulk_create(
        Product(organization=organization, sku=f"N-{{n}}", name="Bench", price="9.99",
                stock={stock})
        for n in range({clients})
    )
    _, key = OrganizationAPIKey.objects.create_key(organization=organization, name="bench")
    clients.append(
        {{"organization": organization.pk, "key": key, "customer": customer.pk,
          "products": [product.pk for product in products]}}
    )
print(json.dumps(clients))
"""
# Each wrk thread holds one connection and sends one client's order again and again.
CLIENT_SCRIPT = """
local clients = {clients}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("client", counter)
end
function init(args)
  local chosen = clients[client]
  order = wrk.format("POST", "/api/v1/orders/", {{
    ["Authorization"] = "Bearer " .. chosen[1],
    ["Content-Type"] = "application/json",
    ["Host"] = "127.0.0.1",
  }}, chosen[2])
end
function request()
  return order
end
"""


def lua_clients(organizations, spread):
    """Lua table of {key, body} per client: client i orders product i of organization 0, or
    (spread) product i of organization i."""
    rows = []
    for index in range(CLIENTS):
        organization = organizations[index if spread else 0]
        body = json.dumps(
            {
                "customer": organization["customer"],
                "lines": [{"product": organization["products"][index], "quantity": 1}],
            }
        )
        rows.append("{" + json.dumps(organization["key"]) + ", " + json.dumps(body) + "}")
    return "{" + ", ".join(rows) + "}"


def check_numbers(database_url, organizations):
    """Per organization: orders, highest number and sequence value, all equal when no number was
    skipped or given twice."""
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT o.organization_id, count(*), max(substring(o.number FROM 5)::bigint), "
            "max(s.last_number) FROM orders_order o JOIN orders_ordernumbersequence s "
            "ON s.organization_id = o.organization_id WHERE o.organization_id = ANY(%s) "
            "GROUP BY o.organization_id",
            [[organization["organization"] for organization in organizations]],
        ).fetchall()
    return all(count == highest == last for _, count, highest, last in rows), rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    options = parser.parse_args()
    require_wrk()

    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    ensure_database(database_url)
    environment = bench_environment(database_url)
    manage(environment, "migrate", "--noinput", "-v0")
    script = SETUP.format(clients=CLIENTS, run=uuid.uuid4().hex[:8], stock=STOCK)
    organizations = json.loads(manage(environment, "shell", "--command", script).splitlines()[-1])
    loads = {
        "one-org": CLIENT_SCRIPT.format(clients=lua_clients(organizations, spread=False)),
        "16-orgs": CLIENT_SCRIPT.format(clients=lua_clients(organizations, spread=True)),
    }
    load_before = os.getloadavg()
    print(
        f"order numbering bench: {CLIENTS} clients (wrk), {options.duration:.0f} s per load and "
        f"round, {options.workers} workers x {options.threads} threads, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load {load_before[0]:.2f}"
    )
    rates = {name: [] for name in loads}
    with gunicorn(environment, options.workers, options.threads) as port:
        url = f"http://127.0.0.1:{port}/api/v1/orders/"
        for script in loads.values():  # warm-up: imports, pooled connections
            run_wrk(url, CLIENTS, 2, script)
        order = list(loads)
        for number in range(1, options.rounds + 1):
            for name in order:
                result = measure(
                    run_wrk, server_groups[port], url, CLIENTS, options.duration, loads[name]
                )
                created = result["requests"] - result["errors"].get("status", 0)
                rates[name].append(created / result["seconds"])
                print(
                    f"  round {number} {name:<8} {rates[name][-1]:7.1f} orders/s, "
                    f"p50 {result['p50']:6.1f} ms, p95 {result['p95']:6.1f} ms, "
                    f"errors {result['errors'] or 0}, server CPU {result['server_cpu']:.0%}, "
                    f"wrk CPU {result['client_cpu']:.0%}, others {result['others']:.0%}",
                    flush=True,
                )
            order.reverse()  # neither load always runs first
    one, spread = (statistics.median(rates[name]) for name in loads)
    ratios = [a / b for a, b in zip(rates["one-org"], rates["16-orgs"], strict=True)]
    print(
        f"median orders/s: one-org {one:.1f}, 16-orgs {spread:.1f}; one-org / 16-orgs per round "
        f"{', '.join(f'{ratio:.2f}' for ratio in ratios)}, median {statistics.median(ratios):.2f}"
    )
    consistent, rows = check_numbers(database_url, organizations)
    print(f"numbers 1..n without gap or repeat in every organization: {consistent}")
    if not consistent:
        print(f"  (organization, orders, highest number, sequence): {rows}")
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
