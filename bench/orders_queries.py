"""Queries per API list request at page size 10 and 100: they must be equal (no N+1).

    .venv/bin/python bench/orders_queries.py            # SQLite in memory
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/orders_bench \
        .venv/bin/python bench/orders_queries.py

Creates a throw-away test database (test_<name>), fills it, prints a table; never fails on time.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("DJANGO_ENV", "test")
os.environ.setdefault("DATABASE_URL", "sqlite:///:memory:")
os.environ.setdefault("LOG_LEVEL", "ERROR")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import (  # noqa: E402
    CaptureQueriesContext,
    setup_test_environment,
    teardown_test_environment,
)
from rest_framework.test import APIClient  # noqa: E402

ENDPOINTS = ["/api/v1/orders/", "/api/v1/products/", "/api/v1/customers/"]
PAGE_SIZES = [10, 100]


def fill():
    from apps.orders import services
    from apps.orders.models import Customer, Product
    from apps.tenants.models import Organization, OrganizationAPIKey

    organization = Organization.objects.create(name="Bench", slug="bench")
    customers = Customer.objects.bulk_create(
        Customer(organization=organization, email=f"c{n}@example.com", name=f"C {n}")
        for n in range(120)
    )
    products = Product.objects.bulk_create(
        Product(organization=organization, sku=f"P{n}", name=f"P {n}", price=5, stock=10**6)
        for n in range(120)
    )
    for n in range(120):
        lines = [{"product": products[(n + k) % 120], "quantity": 1} for k in range(1 + n % 4)]
        services.create_order(organization, customers[n], lines)
    _, key = OrganizationAPIKey.objects.create_key(organization=organization, name="bench")
    return key


def main():
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0)
    try:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {fill()}")
        print(f"database: {connection.vendor}")
        print(f"{'endpoint':<22}{'page size':>10}{'rows':>6}{'queries':>9}{'ms':>8}")
        for endpoint in ENDPOINTS:
            client.get(endpoint)  # first use of the key writes last_used_at
            for page_size in PAGE_SIZES:
                started = time.perf_counter()
                with CaptureQueriesContext(connection) as captured:
                    response = client.get(endpoint, {"page_size": page_size})
                elapsed = (time.perf_counter() - started) * 1000
                rows = len(response.json()["results"])
                print(f"{endpoint:<22}{page_size:>10}{rows:>6}{len(captured):>9}{elapsed:>8.1f}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()


if __name__ == "__main__":
    main()
