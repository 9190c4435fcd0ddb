"""Deterministic demo data, written with bulk_create in batches.

One million order lines take minutes on PostgreSQL: rows are built in memory per batch and
inserted in one statement per batch and table, with no per-row queries.
"""

import datetime as dt
import random
import time
from collections import Counter
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

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
HISTORY_DAYS = 90


class Command(BaseCommand):
    help = "Load realistic, deterministic demo data (organizations, customers, products, orders)."

    def add_arguments(self, parser):
        parser.add_argument("--orgs", type=int, default=2, help="organizations (default 2)")
        parser.add_argument("--customers", type=int, default=200, help="customers per org")
        parser.add_argument("--products", type=int, default=100, help="products per org")
        parser.add_argument("--orders", type=int, default=2000, help="orders per org")
        parser.add_argument("--max-lines", type=int, default=5, help="lines per order, at most")
        parser.add_argument("--seed", type=int, default=42, help="random seed")
        parser.add_argument("--batch-size", type=int, default=5000, help="rows per INSERT")
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
        organizations = []
        for number in range(1, options["orgs"] + 1):
            slug = f"demo-{number}"
            if Organization.objects.filter(slug=slug).exists():
                raise CommandError(f"Organization {slug} exists already (use --if-empty)")
            organization = self.seed_organization(number, slug, options)
            organizations.append(organization)
        if connection.vendor == "postgresql":
            # Fresh statistics, or the planner guesses from an empty table and skips the indexes.
            with connection.cursor() as cursor:
                for model in (Customer, Product, Order, OrderLine):
                    cursor.execute(f'ANALYZE "{model._meta.db_table}"')
        self.progress(f"done in {time.monotonic() - started:.1f} s")
        # An API key for it: `manage.py demo_api_key`, which `make run` calls on every run.
        self.stdout.write(f"Demo data loaded: {', '.join(org.slug for org in organizations)}.")

    def progress(self, message):
        self.stderr.write(f"seed_demo: {message}")
        self.stderr.flush()

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
        rng = self.random
        total_orders = options["orders"]
        max_lines = min(options["max_lines"], len(products))
        statuses, weights = zip(*STATUS_WEIGHTS, strict=True)
        span = HISTORY_DAYS * 86400
        offsets = sorted(rng.random() * span for _ in range(total_orders))
        sold = Counter()
        lines_written = 0
        started = time.monotonic()
        for first in range(0, total_orders, self.batch_size):
            orders, order_lines = [], []
            for index in range(first, min(first + self.batch_size, total_orders)):
                created_at = self.now - dt.timedelta(seconds=span - offsets[index])
                status = rng.choices(statuses, weights)[0]
                chosen = rng.sample(products, rng.randint(1, max_lines))
                lines = [(product, rng.randint(1, 4)) for product in chosen]
                order = Order(
                    organization=organization,
                    customer=rng.choice(customers),
                    number=format_order_number(index + 1),
                    status=status,
                    total=sum((product.price * quantity for product, quantity in lines), Decimal()),
                    created_at=created_at,
                    paid_at=created_at + dt.timedelta(minutes=5)
                    if status in (Order.Status.PAID, Order.Status.SHIPPED)
                    else None,
                    shipped_at=created_at + dt.timedelta(days=1)
                    if status == Order.Status.SHIPPED
                    else None,
                    cancelled_at=created_at + dt.timedelta(hours=2)
                    if status == Order.Status.CANCELLED
                    else None,
                )
                orders.append((order, lines))
            with transaction.atomic():
                Order.objects.bulk_create([order for order, _ in orders])
                for order, lines in orders:
                    for product, quantity in lines:
                        order_lines.append(
                            OrderLine(
                                organization=organization,
                                order_id=order.pk,
                                product=product,
                                quantity=quantity,
                                unit_price=product.price,
                                line_total=product.price * quantity,
                            )
                        )
                        if order.status != Order.Status.CANCELLED:
                            sold[product.pk] += quantity
                OrderLine.objects.bulk_create(order_lines, batch_size=self.batch_size)
            lines_written += len(order_lines)
            done = min(first + self.batch_size, total_orders)
            rate = lines_written / max(time.monotonic() - started, 1e-6)
            self.progress(
                f"{organization.slug}: orders {done}/{total_orders}, "
                f"lines {lines_written} ({rate:,.0f} lines/s)"
            )
        return sold
