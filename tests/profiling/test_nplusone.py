"""N+1 patterns the inspector must find, and the shapes that must never be reported."""

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection, transaction
from django.db.models import Count, Sum
from django.template import Context, Engine
from rest_framework import serializers

from apps.orders.models import Customer
from apps.profiling.inspector import DUPLICATE, N_PLUS_ONE, N_PLUS_ONE_WRITE
from apps.profiling.nplusone import assert_no_nplusone, detect_nplusone
from apps.tenants.models import Organization
from tests.orders.factories import make_customer, make_organization

ROWS = 6
THIS_FILE = "tests/profiling/test_nplusone.py"


@pytest.fixture
def customers(db):
    """ROWS customers, each of its own organization (so each foreign key differs)."""
    return [make_customer(make_organization()) for _ in range(ROWS)]


@pytest.fixture
def users_with_groups(db):
    groups = [Group.objects.create(name=f"group {number}") for number in range(2)]
    users = []
    for number in range(ROWS):
        user = User.objects.create(username=f"user{number}")
        user.groups.set(groups)
        users.append(user)
    return users


def only_finding(report):
    assert len(report.findings) == 1, report.all_findings
    finding = report.findings[0]
    assert finding.kind == N_PLUS_ONE
    return finding


# --- Positives -----------------------------------------------------------------------------------


def test_foreign_key_in_a_loop_is_an_n_plus_one(customers):
    with detect_nplusone(threshold=3) as report:
        for customer in Customer.objects.all():
            customer.organization.name  # noqa: B018 - the access is the query

    finding = only_finding(report)
    assert finding.count == ROWS
    assert finding.callsite.startswith(f"{THIS_FILE}:")
    assert "tenants_organization" in finding.sql
    assert len(finding.fingerprint) == 16


def test_reverse_foreign_key_all_per_row_is_an_n_plus_one(customers):
    with detect_nplusone(threshold=3) as report:
        for organization in Organization.objects.all():
            list(organization.customer_set.all())

    assert only_finding(report).count == ROWS


def test_reverse_foreign_key_count_per_row_is_an_n_plus_one(customers):
    with detect_nplusone(threshold=3) as report:
        for organization in Organization.objects.all():
            organization.customer_set.count()

    finding = only_finding(report)
    assert finding.count == ROWS
    assert "COUNT(" in finding.sql.upper()


def test_get_in_a_loop_is_an_n_plus_one(customers):
    with detect_nplusone(threshold=3) as report:
        for customer in customers:
            Customer.objects.get(pk=customer.pk)

    assert only_finding(report).count == ROWS


def test_deferred_field_access_is_an_n_plus_one(customers):
    with detect_nplusone(threshold=3) as report:
        for customer in Customer.objects.only("id"):
            customer.name  # noqa: B018 - loading the deferred field is the query

    assert only_finding(report).count == ROWS


def test_many_to_many_per_row_is_an_n_plus_one(users_with_groups):
    with detect_nplusone(threshold=3) as report:
        for user in User.objects.all():
            [group.name for group in user.groups.all()]

    finding = only_finding(report)
    assert finding.count == ROWS
    assert "auth_user_groups" in finding.sql


class GroupSerializer(serializers.ModelSerializer):
    class Meta:
        model = Group
        fields = ["name"]


class UserSerializer(serializers.ModelSerializer):
    groups = GroupSerializer(many=True)

    class Meta:
        model = User
        fields = ["username", "groups"]


def test_drf_nested_serializer_without_prefetch_is_an_n_plus_one(users_with_groups):
    with detect_nplusone(threshold=3) as report:
        data = UserSerializer(User.objects.all(), many=True).data

    assert len(data) == ROWS
    finding = only_finding(report)
    assert finding.count == ROWS
    assert finding.callsite.startswith(f"{THIS_FILE}:")
    assert "serializer field UserSerializer.groups" in finding.callsite


LOOP_TEMPLATE = """<ul>
{% for customer in customers %}
  <li>{{ customer.organization.name }}</li>
{% endfor %}
</ul>"""


def test_template_loop_is_an_n_plus_one_named_by_template_and_line(customers):
    engine = Engine(
        loaders=[("django.template.loaders.locmem.Loader", {"customers.html": LOOP_TEMPLATE})]
    )
    template = engine.get_template("customers.html")

    with detect_nplusone(threshold=3) as report:
        html = template.render(Context({"customers": Customer.objects.all()}))

    assert html.count("<li>") == ROWS
    finding = only_finding(report)
    assert finding.count == ROWS
    assert "in template customers.html:3" in finding.callsite
    assert finding.callsite.startswith(f"{THIS_FILE}:")


def test_raw_cursor_in_a_loop_is_an_n_plus_one(customers):
    with detect_nplusone(threshold=3) as report, connection.cursor() as cursor:
        for customer in customers:
            cursor.execute("SELECT name FROM orders_customer WHERE id = %s", [customer.pk])

    assert only_finding(report).count == ROWS


def test_raw_sql_with_inline_literals_in_a_loop_is_an_n_plus_one(customers):
    with detect_nplusone(threshold=3) as report, connection.cursor() as cursor:
        for customer in customers:
            cursor.execute(f"SELECT name FROM orders_customer WHERE id = {int(customer.pk)}")

    finding = only_finding(report)
    assert "id = %s" in finding.sql


def organization_name_of(customer):
    return customer.organization.name


def test_helper_called_in_a_loop_is_an_n_plus_one_at_the_helper(customers):
    with detect_nplusone(threshold=3) as report:
        for customer in Customer.objects.all():
            organization_name_of(customer)

    finding = only_finding(report)
    helper_line = organization_name_of.__code__.co_firstlineno + 1
    assert finding.callsite == f"{THIS_FILE}:{helper_line}"


def passing_wrapper(execute, sql, params, many, context):
    return execute(sql, params, many, context)


def test_other_execute_wrappers_around_the_inspector_are_not_the_call_site(customers):
    # The observability query counter is one; whichever is installed last sits outermost.
    connection.execute_wrappers.insert(0, passing_wrapper)
    try:
        with detect_nplusone(threshold=3) as report:
            for customer in Customer.objects.all():
                organization_name_of(customer)
    finally:
        connection.execute_wrappers.remove(passing_wrapper)

    helper_line = organization_name_of.__code__.co_firstlineno + 1
    assert only_finding(report).callsite == f"{THIS_FILE}:{helper_line}"


def test_threshold_defaults_to_the_setting(customers, settings):
    settings.NPLUSONE_THRESHOLD = ROWS + 1
    with detect_nplusone() as report:
        for customer in Customer.objects.all():
            customer.organization.name  # noqa: B018

    assert report.findings == []


def read_organizations_one_by_one():
    with assert_no_nplusone(threshold=3):
        for customer in Customer.objects.all():
            customer.organization.name  # noqa: B018


def test_assert_no_nplusone_names_kind_count_call_site_and_sql(customers):
    with pytest.raises(AssertionError) as raised:
        read_organizations_one_by_one()

    message = str(raised.value)
    assert "n_plus_one" in message
    assert f"{ROWS} x at {THIS_FILE}:" in message
    assert "tenants_organization" in message


def test_identical_queries_are_a_duplicate_not_an_n_plus_one(customers):
    first = customers[0]
    with detect_nplusone(threshold=3) as report:
        for _ in range(4):
            Customer.objects.get(pk=first.pk)

    assert report.findings == []
    [duplicate] = report.duplicates
    assert duplicate.kind == DUPLICATE
    assert duplicate.count == 4


def fetch_customer(pk):
    return Customer.objects.get(pk=pk)


def test_identical_queries_from_different_call_sites_are_one_duplicate(customers):
    first = customers[0]
    with detect_nplusone(threshold=3) as report:
        Customer.objects.get(pk=first.pk)
        fetch_customer(first.pk)
        Customer.objects.get(pk=first.pk)

    [duplicate] = report.duplicates
    assert duplicate.count == 3
    assert report.findings == []


def test_a_query_at_least_log_slow_query_ms_is_slow(customers, settings):
    settings.LOG_SLOW_QUERY_MS = 1
    sleep = "SELECT pg_sleep(0.005)" if connection.vendor == "postgresql" else None
    with detect_nplusone() as report, connection.cursor() as cursor:
        if sleep:
            cursor.execute(sleep)
        else:
            cursor.execute(
                "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 300000)"
                " SELECT count(*) FROM n"
            )

    [slow] = report.slow_queries
    assert slow.max_ms >= 1


# --- Negatives -----------------------------------------------------------------------------------


def test_select_related_is_not_an_n_plus_one(customers):
    with detect_nplusone(threshold=3) as report:
        for customer in Customer.objects.select_related("organization"):
            customer.organization.name  # noqa: B018

    assert report.all_findings == []
    assert report.queries == 1


def test_prefetch_related_is_not_an_n_plus_one(users_with_groups):
    with detect_nplusone(threshold=3) as report:
        for user in User.objects.prefetch_related("groups"):
            [group.name for group in user.groups.all()]
        UserSerializer(User.objects.prefetch_related("groups"), many=True).data  # noqa: B018

    assert report.all_findings == []


def test_bulk_create_with_batch_size_is_not_an_n_plus_one(db):
    organization = make_organization()
    customers = [
        Customer(organization=organization, email=f"bulk{number}@example.com", name="bulk")
        for number in range(20)
    ]
    with detect_nplusone(threshold=3) as report:
        Customer.objects.bulk_create(customers, batch_size=1)
        Customer.objects.bulk_create(
            [Customer(organization=organization, email=f"more{n}@example.com") for n in range(9)],
            batch_size=2,
        )

    assert Customer.objects.count() == 29
    assert report.all_findings == []
    # Batches are not even recorded: a batch_size=1 bulk_create is one call, not a loop.
    assert report.queries == 0


def test_iterator_with_chunk_size_is_not_an_n_plus_one(users_with_groups):
    with detect_nplusone(threshold=3) as report:
        names = [user.username for user in User.objects.iterator(chunk_size=2)]
        groups = [
            len(user.groups.all())
            for user in User.objects.prefetch_related("groups").iterator(chunk_size=2)
        ]

    assert len(names) == len(groups) == ROWS
    assert report.all_findings == []


def test_nested_atomic_blocks_are_not_an_n_plus_one(db):
    with detect_nplusone(threshold=3) as report:
        for _ in range(10):
            with transaction.atomic(), transaction.atomic(), transaction.atomic():
                pass
        with transaction.atomic(), transaction.atomic():
            make_organization()

    assert report.all_findings == []
    # Only the INSERT: savepoints are never recorded.
    assert report.queries == 1


def test_one_query_from_two_call_sites_each_below_the_threshold_is_not_an_n_plus_one(customers):
    with detect_nplusone(threshold=4) as report:
        for customer in customers[:3]:
            Customer.objects.get(pk=customer.pk)
        for customer in customers[3:]:
            Customer.objects.get(pk=customer.pk)

    assert report.findings == []


def test_a_helper_called_from_two_loops_each_below_the_threshold_is_not_an_n_plus_one(customers):
    with detect_nplusone(threshold=4) as report:
        for customer in Customer.objects.all()[:3]:
            organization_name_of(customer)
        for customer in Customer.objects.all()[3:]:
            organization_name_of(customer)

    assert report.findings == []


def test_writes_in_a_loop_are_write_n_plus_ones_not_read_ones(customers):
    with detect_nplusone(threshold=3) as report:
        for customer in customers:
            customer.name = "renamed"
            customer.save(update_fields=["name"])
            make_organization()

    assert report.findings == []
    assert [finding.kind for finding in report.write_findings] == [N_PLUS_ONE_WRITE] * 2


def test_aggregates_are_not_an_n_plus_one(customers):
    with detect_nplusone(threshold=3) as report:
        Customer.objects.aggregate(customers=Count("id"), ids=Sum("id"))
        list(Organization.objects.annotate(customers=Count("customer")))
        Customer.objects.count()

    assert report.all_findings == []
