"""`manage.py demo_traffic`: realistic API traffic against a running service, so that every panel
of the ops pages, the slow-request, error-group and query-finding admin pages and silk have
something true to show.

It is a client: it speaks HTTP to --base-url with an organization's API key, as an integration
would (browse, create, pay, ship, cancel, reports), and on purpose sends invalid input (400),
transitions that are not allowed (409), bursts over a rate (429) and, where the service runs in
development, asks its /api/dev/ endpoints for slow requests, an N+1 and a 500. Those endpoints do
not exist in production: there it says so and sends only the ordinary traffic.
"""

import collections
import itertools
import json
import random
import time
import uuid
from dataclasses import dataclass, field

import urllib3
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from apps.tenants.models import Organization, OrganizationAPIKey

# How often each kind of traffic is chosen (the deliberate ones rarely, as in real life).
ORDINARY_WEIGHTS = {
    "browse": 40,
    "create order": 15,
    "pay": 8,
    "ship": 6,
    "cancel": 3,
    "report": 6,
    "invalid input (400)": 4,
    "conflict (409)": 3,
}
DEVELOPMENT_WEIGHTS = {
    "slow request": 2,
    "N+1 query": 3,
    "server error (500)": 1,
    "burst (429)": 1,
}
# Past the demo endpoint's rate of 5 a minute, whatever the window has counted already.
BURST_REQUESTS = 7
REQUEST_TIMEOUT = urllib3.Timeout(connect=5, read=60)


class ServiceUnreachable(Exception):
    """No answer from the service (refused, reset, timed out)."""


@dataclass
class Tally:
    """What was sent: requests per kind and per answer."""

    kinds: collections.Counter = field(default_factory=collections.Counter)
    statuses: collections.Counter = field(default_factory=collections.Counter)
    unreachable: int = 0

    @property
    def requests(self):
        return sum(self.statuses.values()) + self.unreachable


class ApiClient:
    """The API over pooled HTTP connections, with one organization's key; every request counted
    and ticked on the progress bar."""

    def __init__(self, base_url, key, tally, progress):
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
        self.http = urllib3.PoolManager(timeout=REQUEST_TIMEOUT, retries=False)
        self.tally = tally
        self.progress = progress
        self.kind = "setup"

    def request(self, method, path, body=None, headers=None):
        """(status, parsed JSON or None); (None, None) when the service did not answer."""
        encoded = json.dumps(body).encode() if body is not None else None
        all_headers = {**self.headers, **(headers or {})}
        if encoded is not None:
            all_headers["Content-Type"] = "application/json"
        self.tally.kinds[self.kind] += 1
        self.progress.update(1)
        try:
            response = self.http.request(
                method, self.base_url + path, body=encoded, headers=all_headers
            )
        except urllib3.exceptions.HTTPError:
            self.tally.unreachable += 1
            return None, None
        self.tally.statuses[response.status] += 1
        self.progress.set_postfix_str(self._postfix(), refresh=False)
        try:
            return response.status, json.loads(response.data) if response.data else None
        except ValueError:
            return response.status, None

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body=None, headers=None):
        return self.request("POST", path, body, headers)

    def _postfix(self):
        shown = sorted(self.tally.statuses.items())
        return " ".join(f"{status}:{count}" for status, count in shown)


class Traffic:
    """The kinds of traffic, each a few requests of what a client of the API does."""

    def __init__(self, client, rng, slow_ms, development):
        self.client = client
        self.rng = rng
        self.slow_ms = slow_ms
        self.development = development
        self.customers = []
        self.products = []
        # Orders this run created, by status, to move along.
        self.orders = {"pending": [], "paid": []}

    def load_catalog(self):
        _, customers = self.client.get("/api/v1/customers/?page_size=100")
        _, products = self.client.get(
            "/api/v1/products/?is_active=true&in_stock=true&page_size=100"
        )
        self.customers = [row["id"] for row in (customers or {}).get("results", [])]
        self.products = [row["id"] for row in (products or {}).get("results", [])]
        if not self.customers or not self.products:
            raise CommandError(
                "The organization has no customers or products in stock: load the demo data "
                "(manage.py seed_demo) or pass the --api-key of an organization that has some"
            )

    def kinds(self):
        return {**ORDINARY_WEIGHTS, **(DEVELOPMENT_WEIGHTS if self.development else {})}

    def run(self, kind):
        self.client.kind = kind
        {
            "browse": self.browse,
            "create order": self.create_order,
            "pay": lambda: self.move("pending", "pay", "paid"),
            "ship": lambda: self.move("paid", "ship", None),
            "cancel": self.cancel,
            "report": self.report,
            "invalid input (400)": self.invalid_input,
            "conflict (409)": self.conflict,
            "slow request": lambda: self.client.get(f"/api/dev/slow/?ms={self.slow_ms}"),
            "N+1 query": lambda: self.client.get("/api/dev/n-plus-one/"),
            "server error (500)": lambda: self.client.get("/api/dev/error/"),
            "burst (429)": self.burst,
        }[kind]()

    def browse(self):
        rng = self.rng
        choice = rng.randrange(5)
        if choice == 0:
            self.client.get(f"/api/v1/products/?search={rng.choice('abcdeklmnoprstw')}")
        elif choice == 1:
            self.client.get("/api/v1/customers/?ordering=name&page_size=50")
        elif choice == 2:
            status = rng.choice(["pending", "paid", "shipped", "cancelled"])
            _, page = self.client.get(f"/api/v1/orders/?status={status}")
            if page and page.get("next"):
                self.client.get(page["next"].removeprefix(self.client.base_url))
        elif choice == 3:
            _, page = self.client.get("/api/v1/orders/?page_size=10")
            rows = (page or {}).get("results", [])
            if rows:
                self.client.get(f"/api/v1/orders/{rng.choice(rows)['id']}/")
        else:
            self.client.get(f"/api/v1/products/{rng.choice(self.products)}/")

    def create_order(self):
        rng = self.rng
        lines = [
            {"product": product, "quantity": rng.randint(1, 3)}
            for product in rng.sample(self.products, min(len(self.products), rng.randint(1, 3)))
        ]
        body = {"customer": rng.choice(self.customers), "lines": lines}
        # As a careful client does: a retry of the same order cannot create it twice.
        status, order = self.client.post(
            "/api/v1/orders/", body, headers={"Idempotency-Key": str(uuid.uuid4())}
        )
        if status == 201:
            self.orders["pending"].append(order["id"])

    def move(self, status, transition, new_status):
        if not self.orders[status]:
            return self.create_order()
        order = self.orders[status].pop(self.rng.randrange(len(self.orders[status])))
        answer, _ = self.client.post(f"/api/v1/orders/{order}/{transition}/")
        if answer == 200 and new_status:
            self.orders[new_status].append(order)

    def cancel(self):
        status = self.rng.choice(["pending", "paid"])
        return self.move(status, "cancel", None)

    def report(self):
        if self.rng.random() < 0.5:
            self.client.get("/api/v1/reports/sales/")
        else:
            self.client.get(f"/api/v1/reports/top-products/?limit={self.rng.randint(5, 20)}")

    def invalid_input(self):
        rng = self.rng
        if rng.random() < 0.5:
            body = {"customer": rng.choice(self.customers), "lines": [{"product": 0}]}
            self.client.post("/api/v1/orders/", body)
        else:
            self.client.get("/api/v1/orders/?created_after=yesterday")

    def conflict(self):
        # Shipping an order that is not paid is not allowed: 409 with its current status.
        if not self.orders["pending"]:
            self.create_order()
        if self.orders["pending"]:
            self.client.post(f"/api/v1/orders/{self.orders['pending'][-1]}/ship/")

    def burst(self):
        for _ in range(BURST_REQUESTS):
            self.client.get("/api/dev/throttled/")


class Command(BaseCommand):
    help = (
        "Drive the running service over HTTP with realistic API traffic (browse, create, pay, "
        "ship, cancel, reports) and, on purpose, slow requests, an N+1, 400s, 409s, 429s and, "
        "in development only, 500s: every ops panel gets something true to show."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url",
            default=f"http://127.0.0.1:{settings.PORT}",
            help="where the service answers (default http://127.0.0.1:PORT)",
        )
        parser.add_argument(
            "--minutes", type=float, default=2.0, help="how long to send (default 2)"
        )
        parser.add_argument(
            "--rate", type=float, default=5.0, help="requests per second, about (default 5)"
        )
        parser.add_argument(
            "--api-key",
            default="",
            help="the key to send (default: a new key of the first active organization)",
        )
        parser.add_argument("--seed", type=int, default=None, help="random seed (default: none)")

    def handle(self, *args, base_url, minutes, rate, api_key, seed, **options):
        if minutes <= 0 or rate <= 0:
            raise CommandError("--minutes and --rate must be above 0")
        key = api_key or self.new_api_key()
        planned = max(1, round(minutes * 60 * rate))
        tally = Tally()
        # The bar redraws its line with a carriage return: it writes to the stream itself, not
        # through Django's OutputWrapper, which would end every redraw with a new line.
        with tqdm(
            total=planned, unit="req", desc="demo traffic", file=self.stderr._out, leave=True
        ) as progress:
            client = ApiClient(base_url, key, tally, progress)
            self.check_service(client, base_url)
            development = self.development_endpoints_exist(client)
            rng = random.Random(seed)  # noqa: S311 - traffic, not secrets
            traffic = Traffic(client, rng, self.slow_request_ms(), development)
            traffic.load_catalog()
            started = time.monotonic()
            self.send(traffic, progress, started, minutes * 60, rate)
            elapsed = time.monotonic() - started
            progress.total = progress.n  # the bar ends full, however many were planned
            progress.refresh()
        self.summarize(tally, base_url, development, elapsed)

    def new_api_key(self):
        organization = Organization.objects.filter(is_active=True).order_by("created_at", "pk")
        organization = organization.first()
        if organization is None:
            raise CommandError("No active organization: load the demo data (manage.py seed_demo)")
        name = f"demo_traffic {timezone.now():%Y-%m-%d %H:%M:%S}"
        _, key = OrganizationAPIKey.objects.create_key(organization=organization, name=name)
        return key

    def check_service(self, client, base_url):
        client.kind = "setup"
        status, _ = client.get("/health")
        if status != 200:
            raise CommandError(
                f"No service answers at {base_url} (GET /health: "
                f"{status or 'no answer'}); start it with `make run` or pass --base-url"
            )
        status, body = client.get("/api/v1/products/?page_size=1")
        if status == 401:
            raise CommandError(f"The API refused the key: {body['error']['message']}")

    def development_endpoints_exist(self, client):
        client.kind = "setup"
        status, _ = client.get("/api/dev/slow/?ms=1")
        return status == 200

    def slow_request_ms(self):
        # Past the service's threshold (read from the same environment) with room to spare.
        return int(settings.LOG_SLOW_REQUEST_MS * 1.5)

    def send(self, traffic, progress, started, seconds, rate):
        """Each deliberate kind once first, so that even a short run fills every panel; then
        kinds drawn by weight, paced to `rate` until `seconds` have passed."""
        kinds = traffic.kinds()
        first_round = [kind for kind in kinds if kind not in ("browse", "pay", "ship", "cancel")]
        names, weights = zip(*kinds.items(), strict=True)
        drawn = (traffic.rng.choices(names, weights)[0] for _ in itertools.count())
        interval = 1 / rate
        for kind in itertools.chain(first_round, drawn):
            if time.monotonic() - started >= seconds:
                break
            traffic.run(kind)
            # Paced by requests actually sent (a burst counts all of its requests).
            pause = started + traffic.client.tally.requests * interval - time.monotonic()
            if pause > 0:
                time.sleep(min(pause, max(0.0, started + seconds - time.monotonic())))
            progress.total = max(progress.total, progress.n)

    def summarize(self, tally, base_url, development, elapsed):
        write = self.stdout.write
        write(
            f"Sent {tally.requests:,} requests to {base_url} in {elapsed:.0f} s "
            f"({tally.requests / max(elapsed, 1e-9):.1f}/s)."
        )
        write("  by kind:   " + ", ".join(f"{k} {n}" for k, n in tally.kinds.most_common()))
        statuses = sorted(tally.statuses.items())
        write("  by answer: " + ", ".join(f"{status}: {n}" for status, n in statuses))
        if tally.unreachable:
            write(f"  no answer: {tally.unreachable} (refused, reset or timed out)")
        if development:
            write(
                "  development endpoints (/api/dev/): slow requests, an N+1, 500s and 429s sent "
                "on purpose."
            )
        else:
            write(
                "  no /api/dev/ endpoints (the service is not in development): no slow "
                "requests, N+1 or 500s on purpose."
            )
        flush = settings.TELEMETRY_FLUSH_SECONDS
        write(
            f"See {base_url}/admin/ops/ (each server process writes its statistics every "
            f"{flush:g} s), the slow requests, error groups and query findings in the admin, "
            f"and {base_url}/silk/."
        )
