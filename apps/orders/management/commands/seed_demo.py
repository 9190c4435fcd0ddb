"""Deterministic demo data: the same --seed gives the same rows (ids aside) all day long.

Orders and their lines, the bulk of the data, are built as plain rows per batch and loaded with
COPY on PostgreSQL (bulk_create elsewhere), one statement per batch and table; their ids are
reserved first, so lines reference their order without reading anything back.
"""

import datetime as dt
import itertools
import random
import time
from collections import Counter
from decimal import Decimal
from types import SimpleNamespace

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone
from tqdm import tqdm

from apps.common.bulk_load import foreign_keys_checked_at_end, load_rows, reserve_ids
from apps.orders.models import Customer, Order, OrderLine, OrderNumberSequence, Product
from apps.orders.services import format_order_number
from apps.tenants.models import Organization

FIRST_NAMES = [
    "Ada", "Alan", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Edsger",
    "Radia", "Tim", "Katherine", "John", "Sophie", "Guido", "Hedy", "Niklaus", "Anita", "Bjarne",
]  # fmt: skip
LAST_NAMES = [
    "Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie",
    "Allen", "Dijkstra", "Perlman", "Berners-Lee", "Johnson", "McCarthy", "Wilson", "van Rossum",
    "Lamarr", "Wirth", "Borg", "Stroustrup",
]  # fmt: skip
ADJECTIVES = [
    "Classic", "Compact", "Deluxe", "Eco", "Ergonomic", "Heavy-duty", "Lightweight", "Modular",
    "Portable", "Premium", "Rugged", "Smart", "Solar", "Vintage", "Wireless",
]  # fmt: skip
NOUNS = [
    "Backpack", "Bottle", "Chair", "Desk Lamp", "Headphones", "Jacket", "Kettle", "Keyboard",
    "Mug", "Notebook", "Pen", "Speaker", "Tent", "Umbrella", "Watch",
]  # fmt: skip
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wonka"]
# pending, paid, shipped, cancelled: most orders of the past are done.
STATUS_WEIGHTS = [(Order.Status.PENDING, 10), (Order.Status.PAID, 30), (Order.Status.SHIPPED, 55)]
STATUS_WEIGHTS.append((Order.Status.CANCELLED, 5))
STATUSES = [status for status, _ in STATUS_WEIGHTS]
# What rng.choices(statuses, weights) computes on every call: the same draws, computed once.
STATUS_CUMULATIVE_WEIGHTS = list(itertools.accumulate(weight for _, weight in STATUS_WEIGHTS))
HISTORY_DAYS = 90
ORDER_COLUMNS = ("id", "organization_id", "customer_id", "number", "status", "currency", "total")
ORDER_COLUMNS += ("created_at", "updated_at", "paid_at", "shipped_at", "cancelled_at")
LINE_COLUMNS = ("organization_id", "order_id", "product_id", "quantity", "unit_price")
LINE_COLUMNS += ("line_total",)


class Command(BaseCommand):
    help = "Load realistic, deterministic demo data (organizations, customers, products, orders)."

    def add_arguments(self, parser):
        parser.add_argument("--orgs", type=int, default=2, help="organizations (default 2)")
        parser.add_argument("--customers", type=int, default=200, help="customers per org")
        parser.add_argument("--products", type=int, default=100, help="products per org")
        parser.add_argument("--orders", type=int, default=2000, help="orders per org")
        parser.add_argument("--max-lines", type=int, default=5, help="lines per order, at most")
        parser.add_argument("--seed", type=int, default=42, help="random seed")
        parser.add_argument(
            "--batch-size", type=int, default=5000, help="orders per COPY (or INSERT)"
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="do nothing when any organization exists (for `make run`)",
        )

    def handle(self, *args, **options):
        for name in ("orgs", "customers", "products", "orders", "max_lines", "batch_size"):
            if options[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1")
        if options["if_empty"] and Organization.objects.exists():
            self.stdout.write("Organizations exist already; demo data not loaded.")
            return
        self.random = random.Random(options["seed"])  # noqa: S311 - demo data, not secrets
        self.batch_size = options["batch_size"]
        # Whole days, so that the same seed gives the same data all day long.
        self.now = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
        started = time.monotonic()
        slugs = [f"demo-{number}" for number in range(1, options["orgs"] + 1)]
        if taken := Organization.objects.filter(slug__in=slugs).values_list("slug", flat=True):
            raise CommandError(f"Organization {taken[0]} exists already (use --if-empty)")
        self.quiet = options["verbosity"] == 0
        self.bar = tqdm(
            total=options["orgs"] * options["orders"],
            # The bar rewrites its line: no newline after each write, unlike OutputWrapper.write.
            file=SimpleNamespace(
                write=lambda text: self.stderr.write(text, ending=""), flush=self.stderr.flush
            ),
            disable=self.quiet,
            bar_format="seed_demo: orders {n_fmt}/{total_fmt} |{bar}| {percentage:3.0f}% "
            "[{elapsed}<{remaining}, {rate_fmt}{postfix}]",
            unit=" orders",
            mininterval=0.5,
        )
        with self.bar:
            organizations = [
                self.seed_organization(number, slug, options)
                for number, slug in enumerate(slugs, start=1)
            ]
        if connection.vendor == "postgresql":
            # Fresh statistics, or the planner guesses from an empty table and skips the indexes.
            with connection.cursor() as cursor:
                for model in (Customer, Product, Order, OrderLine):
                    cursor.execute(f'ANALYZE "{model._meta.db_table}"')
        self.progress(f"done in {time.monotonic() - started:.1f} s")
        # An API key for it: `manage.py demo_api_key`, which `make run` calls on every run.
        self.stdout.write(f"Demo data loaded: {', '.join(org.slug for org in organizations)}.")

    def progress(self, message):
        if self.quiet:
            return
        self.bar.write(f"seed_demo: {message}", file=self.bar.fp)

    def seed_organization(self, number, slug, options):
        rng = self.random
        company = COMPANIES[(number - 1) % len(COMPANIES)]
        organization = Organization.objects.create(
            slug=slug, name=f"{company} Demo {number}", created_at=self.now
        )
        customers = [
            Customer(
                organization=organization,
                email=f"customer{index}@{slug}.example.com",
                name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                created_at=self.now - dt.timedelta(days=rng.randint(HISTORY_DAYS, 400)),
            )
            for index in range(1, options["customers"] + 1)
        ]
        Customer.objects.bulk_create(customers, batch_size=self.batch_size)
        products = [
            Product(
                organization=organization,
                sku=f"{company[:3].upper()}-{index:05d}",
                name=f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}",
                price=Decimal(rng.randint(199, 19999)) / 100,
                stock=0,
                is_active=rng.random() > 0.05,
                created_at=self.now - dt.timedelta(days=HISTORY_DAYS + 1),
            )
            for index in range(1, options["products"] + 1)
        ]
        Product.objects.bulk_create(products, batch_size=self.batch_size)
        self.progress(f"{slug}: {len(customers)} customers, {len(products)} products")
        sold = self.seed_orders(organization, customers, products, options)
        for product in products:
            # What is left after the sales, and a bit more.
            product.stock = rng.randint(0, 500) + sold[product.pk] // 10
        Product.objects.bulk_update(products, ["stock"], batch_size=self.batch_size)
        OrderNumberSequence.objects.create(organization=organization, last_number=options["orders"])
        return organization

    def seed_orders(self, organization, customers, products, options):
        total_orders = options["orders"]
        span = HISTORY_DAYS * 86400
        offsets = sorted(self.random.random() * span for _ in range(total_orders))
        sold = Counter()
        lines_written = 0
        # One transaction per organization: its orders appear all at once or not at all.
        with transaction.atomic(), foreign_keys_checked_at_end(Order, OrderLine):
            for first in range(0, total_orders, self.batch_size):
                ids = reserve_ids(Order, min(self.batch_size, total_orders - first))
                order_rows, line_rows = [], []
                for index, order_id in enumerate(ids, start=first):
                    created_at = self.now - dt.timedelta(seconds=span - offsets[index])
                    order, lines = self.order_rows(
                        organization, customers, products, options, order_id, index, created_at
                    )
                    order_rows.append(order)
                    line_rows.extend(lines)
                    if order[ORDER_COLUMNS.index("status")] != Order.Status.CANCELLED:
                        for line in lines:
                            sold[line[2]] += line[3]
                load_rows(Order, ORDER_COLUMNS, order_rows)
                load_rows(OrderLine, LINE_COLUMNS, line_rows)
                lines_written += len(line_rows)
                self.bar.set_postfix_str(
                    f"{organization.slug}, {lines_written:,} lines", refresh=False
                )
                self.bar.update(len(ids))
        return sold

    def order_rows(self, organization, customers, products, options, order_id, index, created_at):
        """One order's row (ORDER_COLUMNS) and its lines' rows (LINE_COLUMNS)."""
        rng = self.random
        status = rng.choices(STATUSES, cum_weights=STATUS_CUMULATIVE_WEIGHTS)[0]
        chosen = rng.sample(products, rng.randint(1, min(options["max_lines"], len(products))))
        quantities = [(product, rng.randint(1, 4)) for product in chosen]
        lines = [
            (organization.pk, order_id, product.pk, count, product.price, product.price * count)
            for product, count in quantities
        ]
        customer = rng.choice(customers)
        paid_at = (
            created_at + dt.timedelta(minutes=5)
            if status in (Order.Status.PAID, Order.Status.SHIPPED)
            else None
        )
        shipped_at = created_at + dt.timedelta(days=1) if status == Order.Status.SHIPPED else None
        cancelled_at = (
            created_at + dt.timedelta(hours=2) if status == Order.Status.CANCELLED else None
        )
        order = (
            order_id,
            organization.pk,
            customer.pk,
            format_order_number(index + 1),
            status,
            "EUR",
            sum((line[-1] for line in lines), Decimal("0.00")),
            created_at,
            shipped_at or cancelled_at or paid_at or created_at,  # when it last changed
            paid_at,
            shipped_at,
            cancelled_at,
        )
        return order, lines
