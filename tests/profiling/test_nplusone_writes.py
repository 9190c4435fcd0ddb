"""Write N+1: one row written at a time from one call site, and the bulk writes that are not."""

import time

import pytest
from django.db import connection
from django.db.models import F

from apps.orders.models import Customer, Product
from apps.profiling import findings
from apps.profiling.inspector import DUPLICATE, N_PLUS_ONE, N_PLUS_ONE_WRITE
from apps.profiling.models import QueryFinding
from apps.profiling.nplusone import detect_nplusone
from tests.orders.factories import make_organization, make_product

pytestmark = pytest.mark.django_db

ROWS = 6
THIS_FILE = "tests/profiling/test_nplusone_writes.py"


@pytest.fixture
def organization():
    return make_organization()


@pytest.fixture
def products(organization):
    return [make_product(organization, stock=100) for _ in range(ROWS)]


def kinds(report):
    return sorted(finding.kind for finding in report.all_findings)


def test_an_update_per_row_in_a_loop_is_an_n_plus_one_write(products):
    with detect_nplusone(threshold=3) as report:
        for product in products:
            Product.objects.filter(pk=product.pk).update(stock=F("stock") - 1)

    [finding] = report.all_findings
    assert finding.kind == N_PLUS_ONE_WRITE
    assert finding.count == ROWS
    assert finding.callsite.startswith(f"{THIS_FILE}:")
    assert finding.sql.startswith('UPDATE "orders_product"')


def test_an_insert_per_row_in_a_loop_is_an_n_plus_one_write(organization):
    with detect_nplusone(threshold=3) as report:
        for number in range(ROWS):
            Customer.objects.create(organization=organization, email=f"c{number}@example.com")

    [finding] = report.all_findings
    assert finding.kind == N_PLUS_ONE_WRITE
    assert finding.count == ROWS


def test_a_delete_per_row_in_a_loop_is_an_n_plus_one_write(products):
    with detect_nplusone(threshold=3) as report:
        for product in products:
            Product.objects.filter(pk=product.pk).delete()

    assert N_PLUS_ONE_WRITE in kinds(report)


def test_a_write_n_plus_one_is_not_a_read_n_plus_one(products):
    # assert_no_nplusone and the no_nplusone marker guard reads: a test's own set-up writes rows
    # in loops.
    with detect_nplusone(threshold=3) as report:
        for product in products:
            Product.objects.filter(pk=product.pk).update(stock=F("stock") - 1)

    assert report.findings == []
    assert len(report.write_findings) == 1


def test_writes_below_the_threshold_are_not_an_n_plus_one_write(products):
    with detect_nplusone(threshold=ROWS + 1) as report:
        for product in products:
            Product.objects.filter(pk=product.pk).update(stock=F("stock") - 1)

    assert report.all_findings == []


def test_one_executemany_is_not_an_n_plus_one_write(products):
    table = connection.ops.quote_name(Product._meta.db_table)
    with detect_nplusone(threshold=3) as report, connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET stock = stock - %s WHERE id = %s",
            [(1, product.pk) for product in products],
        )

    assert report.all_findings == []


def test_bulk_create_batches_are_not_an_n_plus_one_write(organization):
    customers = [
        Customer(organization=organization, email=f"bulk{number}@example.com")
        for number in range(ROWS * 2)
    ]
    with detect_nplusone(threshold=3) as report:
        Customer.objects.bulk_create(customers, batch_size=1)

    assert report.all_findings == []


def test_bulk_update_batches_are_not_an_n_plus_one_write(products):
    for product in products:
        product.stock = 7
    with detect_nplusone(threshold=3) as report:
        Product.objects.bulk_update(products, ["stock"], batch_size=1)

    assert report.all_findings == []


def test_one_update_of_many_rows_is_not_an_n_plus_one_write(products):
    with detect_nplusone(threshold=3) as report:
        Product.objects.filter(pk__in=[product.pk for product in products]).update(stock=0)

    assert report.all_findings == []


def test_a_read_loop_that_repeats_some_rows_is_an_n_plus_one_not_also_a_duplicate(products):
    # The same product read again (an order listing it on several lines): one loop, one finding.
    repeated = [products[0], *products, products[0], products[0]]
    with detect_nplusone(threshold=3) as report:
        for product in repeated:
            Product.objects.get(pk=product.pk)

    assert kinds(report) == [N_PLUS_ONE]


def test_a_write_loop_that_repeats_some_rows_is_an_n_plus_one_write_not_also_a_duplicate(
    products,
):
    repeated = [products[0], *products, products[0], products[0]]
    with detect_nplusone(threshold=3) as report:
        for product in repeated:
            Product.objects.filter(pk=product.pk).update(stock=F("stock") - 1)

    assert kinds(report) == [N_PLUS_ONE_WRITE]


def fetch(pk):
    return Product.objects.get(pk=pk)


def test_identical_reads_from_two_call_sites_are_still_a_duplicate_beside_an_n_plus_one(
    products,
):
    with detect_nplusone(threshold=3) as report:
        for product in products:
            Product.objects.get(pk=product.pk)
        fetch(products[0].pk)
        fetch(products[0].pk)

    assert kinds(report) == [DUPLICATE, N_PLUS_ONE]


def test_a_write_n_plus_one_is_saved_under_its_own_kind(products):
    with detect_nplusone(threshold=3) as report:
        for product in products:
            Product.objects.filter(pk=product.pk).update(stock=F("stock") - 1)
    findings.record_findings(report, source="test", at=time.time())

    findings.flush_findings()

    saved = QueryFinding.objects.get()
    assert saved.kind == QueryFinding.Kind.N_PLUS_ONE_WRITE
    assert saved.get_kind_display() == "N+1 write"
