"""The checks that read the database: connection budget, pool waits, foreign keys, sequential
scans, slowest statements, hot rows. PostgreSQL ones skip on SQLite."""

import datetime as dt
import threading

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from apps.audit.checks import connections as connection_checks
from apps.audit.checks import queries, schema
from apps.audit.report import CRITICAL, INFO, WARNING
from apps.observability.telemetry.models import ErrorGroup
from apps.profiling.models import QueryFinding
from tests.audit.conftest import finding, ids, on_postgresql, scope
from tests.orders.factories import make_customer, make_organization

pytestmark = [pytest.mark.django_db]


# --- Connection budget ----------------------------------------------------------------------------


@on_postgresql
def test_a_pool_beyond_max_connections_fails_with_the_arithmetic(settings, monkeypatch):
    monkeypatch.setitem(settings.DATABASES["default"]["OPTIONS"]["pool"], "max_size", 50)
    settings.WEB_CONCURRENCY = 4

    budget = finding(connection_checks.connection_budget(scope(instances=3)), "connection-budget")

    assert budget.severity == CRITICAL
    assert budget.data["demand"] == 3 * 4 * 50
    assert "3 instance(s) x 4 workers (WEB_CONCURRENCY) x 50 (DB_POOL_MAX_SIZE) = 600" in (
        budget.evidence
    )
    assert f"= {budget.data['available']} available" in budget.evidence


@on_postgresql
def test_a_pool_within_max_connections_fits(settings, monkeypatch):
    monkeypatch.setitem(settings.DATABASES["default"]["OPTIONS"]["pool"], "max_size", 2)
    settings.WEB_CONCURRENCY = 2

    budget = finding(connection_checks.connection_budget(scope()), "connection-budget")

    assert budget.severity == INFO
    assert budget.data["demand"] == 4


@on_postgresql
def test_a_budget_near_the_limit_warns(settings, monkeypatch):
    settings.WEB_CONCURRENCY = 1
    available = connection_checks._server_budget(scope(), "default", "x").data["available"]
    monkeypatch.setitem(settings.DATABASES["default"]["OPTIONS"]["pool"], "max_size", available)

    budget = finding(connection_checks.connection_budget(scope()), "connection-budget")

    assert budget.severity == WARNING


# --- Pool waits and exhaustion --------------------------------------------------------------------


def test_pool_timeouts_in_the_window_fail_naming_the_route():
    now = timezone.now()
    ErrorGroup.objects.create(
        fingerprint="pool",
        exception_class="django.db.utils.OperationalError",
        frame="apps/orders/api/views.py:10",
        route="/api/v1/orders/",
        method="GET",
        count=7,
        first_seen=now,
        last_seen=now,
        sample_message="couldn't get a connection after 10.00 sec",
    )

    exhaustion = finding(connection_checks.pool_waits(scope()), "pool-exhaustion")

    assert exhaustion.severity == CRITICAL
    assert "7 request(s)" in exhaustion.evidence
    assert "/api/v1/orders/" in exhaustion.evidence


def test_pool_timeouts_before_the_window_are_not_counted():
    long_ago = timezone.now() - dt.timedelta(hours=3)
    ErrorGroup.objects.create(
        fingerprint="pool",
        exception_class="psycopg_pool.PoolTimeout",
        frame="apps/orders/api/views.py:10",
        route="/api/v1/orders/",
        method="GET",
        count=7,
        first_seen=long_ago,
        last_seen=long_ago,
    )

    waits = finding(connection_checks.pool_waits(scope()), "pool-waits")

    assert waits.severity == INFO


# --- Foreign keys ---------------------------------------------------------------------------------


def _index_of(table, column):
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return next(
        name
        for name, details in constraints.items()
        if details["index"] and details["columns"] == [column] and not details["unique"]
    )


def test_a_dropped_foreign_key_index_fails_naming_the_column():
    index = _index_of("orders_order", "customer_id")
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX {connection.ops.quote_name(index)}")

    found = finding(schema.foreign_key_indexes(scope()), "fk-unindexed:orders_order.customer_id")

    assert found.severity == CRITICAL
    assert "orders_order.customer_id" in found.evidence


def test_the_schema_as_migrated_indexes_every_foreign_key():
    assert ids(schema.foreign_key_indexes(scope())) == ["foreign-keys"]


# --- Sequential scans -----------------------------------------------------------------------------


def _flush_statistics():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_large_table_read_by_sequential_scans_warns(settings):
    settings.SCALING_AUDIT_LARGE_TABLE_ROWS = 1
    organization = make_organization()
    for number in range(20):
        make_customer(organization, email=f"scan{number}@example.com")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders_customer")
        for _ in range(30):
            cursor.execute("SELECT COUNT(*) FROM orders_customer WHERE name LIKE '%%z%%'")
    _flush_statistics()

    scanned = finding(schema.sequential_scans(scope()), "sequential-scans:orders_customer")

    assert scanned.severity == WARNING
    assert scanned.data["sequential_scans"] >= 30


@on_postgresql
def test_no_table_is_large_enough_to_judge_by_default():
    assert ids(schema.sequential_scans(scope())) == ["sequential-scans"]


# --- Slowest statements ---------------------------------------------------------------------------


@on_postgresql
def test_a_server_without_pg_stat_statements_is_a_finding_saying_how_to_enable_it():
    missing = finding(queries.slowest_statements(scope()), "pg-stat-statements")

    assert missing.severity == WARNING
    assert "shared_preload_libraries" in missing.recommendation


# --- Hot rows -------------------------------------------------------------------------------------


def _psycopg_connection():
    parameters = connection.get_connection_params()
    parameters.pop("cursor_factory", None)
    parameters.pop("pool", None)
    return psycopg.connect(**parameters, autocommit=False)


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_session_waiting_on_the_order_number_row_is_seen(settings):
    settings.SCALING_AUDIT_LOCK_SAMPLES = 2
    organization = make_organization()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO orders_ordernumbersequence (organization_id, last_number) VALUES (%s, 1)",
            [organization.pk],
        )
    update = "UPDATE orders_ordernumbersequence SET last_number = last_number + 1"
    holder, waiter = _psycopg_connection(), _psycopg_connection()
    try:
        holder.execute(update)
        blocked = threading.Thread(target=lambda: waiter.execute(update), daemon=True)
        blocked.start()
        findings = connection_checks.hot_rows(scope())
    finally:
        holder.rollback()
        blocked.join(timeout=10)
        waiter.rollback()
        holder.close()
        waiter.close()

    waits = finding(findings, "lock-waits")
    assert waits.severity == WARNING
    assert "orders_ordernumbersequence" in waits.evidence


@on_postgresql
def test_no_lock_wait_is_reported_as_such(settings):
    settings.SCALING_AUDIT_LOCK_SAMPLES = 1

    assert finding(connection_checks.hot_rows(scope()), "lock-waits").severity == INFO


def test_slow_order_numbering_statements_mark_the_order_number_row_as_waited_on():
    now = timezone.now()
    QueryFinding.objects.create(
        key="numbering",
        kind=QueryFinding.Kind.SLOW,
        fingerprint="0" * 16,
        sample_sql='UPDATE "orders_ordernumbersequence" SET "last_number" = ("last_number" + ?)',
        callsite="apps/orders/services.py:77",
        source="/api/v1/orders/",
        occurrences=11,
        max_repeats=1,
        total_ms=3077.6,
        max_ms=417.1,
        first_seen=now,
        last_seen=now,
    )

    row = finding(connection_checks.hot_rows(scope()), "hot-row:order-number")

    assert row.severity == WARNING
    assert "11 of its statements took LOG_SLOW_QUERY_MS" in row.evidence
    assert "slowest 417 ms" in row.evidence


def test_the_order_number_row_without_waits_is_information(settings):
    settings.SCALING_AUDIT_LOCK_SAMPLES = 1

    assert finding(connection_checks.hot_rows(scope()), "hot-row:order-number").severity == INFO
