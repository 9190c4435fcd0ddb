"""Small builders for domain rows; each call makes a new, distinct row."""

import itertools
from decimal import Decimal

from apps.orders.models import Customer, Product
from apps.tenants.models import Organization, OrganizationAPIKey

_sequence = itertools.count(1)


def make_organization(**fields):
    number = next(_sequence)
    return Organization.objects.create(
        **{"name": f"Organization {number}", "slug": f"org-{number}", **fields}
    )


def make_api_key(organization, **fields):
    """(key row, key string)"""
    return OrganizationAPIKey.objects.create_key(
        organization=organization, **{"name": "tests", **fields}
    )


def make_customer(organization, **fields):
    number = next(_sequence)
    return Customer.objects.create(
        organization=organization,
        **{"email": f"customer{number}@example.com", "name": f"Customer {number}", **fields},
    )


def make_product(organization, **fields):
    number = next(_sequence)
    return Product.objects.create(
        organization=organization,
        **{
            "sku": f"SKU-{number}",
            "name": f"Product {number}",
            "price": Decimal("10.00"),
            "stock": 100,
            **fields,
        },
    )
