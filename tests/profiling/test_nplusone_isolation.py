"""The inspector's plumbing: every connection wrapped, threads kept apart, memory bounded."""

import copy
import sys
import threading
from types import SimpleNamespace

import pytest
from django.db import connection, connections
from django.db.utils import load_backend

from apps.common import sql as fingerprint
from apps.orders.models import Customer
from apps.profiling import inspector, pytest_plugin
from apps.profiling.nplusone import detect_nplusone
from tests.orders.factories import make_customer, make_organization

THIS_FILE = "tests/profiling/test_nplusone_isolation.py"


def select_value(cursor, value):
    cursor.execute("SELECT %s", [value])
    return cursor.fetchone()


def fake_execute(sql, params, many, context):
    return None


def test_every_configured_alias_has_the_wrapper_once(db):
    for alias_connection in connections.all():
        alias_connection.ensure_connection()
        assert alias_connection.execute_wrappers.count(inspector.inspect_query) == 1


@pytest.mark.django_db(transaction=True)
def test_a_reconnected_connection_keeps_one_wrapper():
    connection.close()
    connection.ensure_connection()
    connection.close()
    connection.ensure_connection()

    assert connection.execute_wrappers.count(inspector.inspect_query) == 1


@pytest.fixture
def second_alias(db):
    """A connection of another alias, created at run time on the test database.

    Built from the backend as Django's ConnectionHandler does, so that only the connection_created
    signal can have wrapped it (tests see "default" only in settings.DATABASES).
    """
    settings_dict = copy.deepcopy(connections["default"].settings_dict)
    # Its own connection, not a second pool.
    settings_dict["OPTIONS"].pop("pool", None)
    backend = load_backend(settings_dict["ENGINE"])
    second = backend.DatabaseWrapper(settings_dict, alias="profiling_second")
    try:
        yield second
    finally:
        second.close()


def test_a_second_database_alias_is_inspected(second_alias):
    with detect_nplusone(threshold=3) as report, second_alias.cursor() as cursor:
        for value in range(5):
            select_value(cursor, value)

    assert second_alias.execute_wrappers.count(inspector.inspect_query) == 1
    [finding] = report.findings
    assert finding.count == 5
    assert finding.callsite.startswith(f"{THIS_FILE}:")


@pytest.mark.django_db(transaction=True)
def test_two_threads_never_mix_their_counts():
    # Both threads run the same helper (one call site): mixed, 4 + 2 would reach the threshold 5.
    barrier = threading.Barrier(2)
    reports = {}
    errors = []

    def work(name, times):
        try:
            with detect_nplusone(threshold=5) as report, connection.cursor() as cursor:
                barrier.wait(timeout=10)
                for value in range(times):
                    select_value(cursor, value)
                    barrier.wait(timeout=10) if value < 2 else None
            reports[name] = report
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=work, args=("four", 4)),
        threading.Thread(target=work, args=("two", 2)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert reports["four"].queries == 4
    assert reports["two"].queries == 2
    assert reports["four"].findings == reports["two"].findings == []


def test_a_query_outside_any_unit_keeps_no_state(db, monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("recorded outside a unit")

    monkeypatch.setattr(inspector.Unit, "record", must_not_run)
    fingerprint.normalise_sql.cache_clear()

    with connection.cursor() as cursor:
        for value in range(10):
            select_value(cursor, value)
    make_customer(make_organization())

    assert inspector.active_unit.get() is None
    assert fingerprint.normalise_sql.cache_info().currsize == 0


def test_units_end_when_their_block_ends(db):
    with detect_nplusone():
        assert inspector.active_unit.get() is not None
    assert inspector.active_unit.get() is None


def call_wrapper(sql, params):
    inspector.inspect_query(fake_execute, sql, params, False, {"connection": connection})


def retained_bytes(unit):
    """What a unit keeps, roughly: its entries with their strings and parameter hashes."""
    total = sys.getsizeof(unit.entries)
    for key, entry in unit.entries.items():
        total += sys.getsizeof(key) + sys.getsizeof(entry) + sys.getsizeof(entry.sql)
        total += sys.getsizeof(entry.callsite)
    total += sys.getsizeof(unit.identical)
    total += sum(sys.getsizeof(key) + sys.getsizeof(seen) for key, seen in unit.identical.items())
    return total


# Four times past the larger of the two caps, half of them new shapes: both caps are reached.
QUERIES_PAST_THE_CAPS = 4 * max(inspector.MAX_ENTRIES, inspector.MAX_IDENTICAL_KEYS)


def test_queries_far_past_the_caps_in_one_unit_stay_within_the_memory_bound():
    with detect_nplusone(threshold=5) as report:
        for number in range(QUERIES_PAST_THE_CAPS):
            # Half repeat one shape with new parameters, half are each a new shape.
            if number % 2:
                call_wrapper("SELECT %s", [number])
            else:
                call_wrapper(f"SELECT col_{number} FROM t WHERE id = %s", [number])
        unit = inspector.active_unit.get()
        entries = len(unit.entries)
        identical = len(unit.identical)
        retained = retained_bytes(unit)

    assert entries == inspector.MAX_ENTRIES
    assert identical == inspector.MAX_IDENTICAL_KEYS
    assert retained < 4 * 1024 * 1024
    assert report.truncated is True
    assert report.queries == QUERIES_PAST_THE_CAPS
    [finding] = report.findings
    assert finding.sql == "SELECT %s"
    assert finding.count == QUERIES_PAST_THE_CAPS // 2


def test_a_real_unit_beyond_its_cap_is_truncated(db):
    with (
        inspector.unit_of_work(threshold=3, max_entries=10) as report,
        connection.cursor() as cursor,
    ):
        for number in range(30):
            cursor.execute(f"SELECT %s AS column_{number}", [number])
        for number in range(20):
            select_value(cursor, number)

    assert report.truncated is True
    assert report.queries == 50
    assert report.findings == []


def test_parameter_values_are_never_stored(customers_with_secret):
    secret = customers_with_secret
    with detect_nplusone(threshold=2) as report:
        for _ in range(3):
            Customer.objects.filter(name=secret).first()
        unit = inspector.active_unit.get()
        stored = repr(
            [(entry.sql, entry.callsite, entry.first_parameters) for entry in unit.entries.values()]
        )

    assert secret not in stored
    assert all(secret not in finding.sql for finding in report.all_findings)


@pytest.fixture
def customers_with_secret(db):
    secret = "very-secret-name-42"
    make_customer(make_organization(), name=secret)
    return secret


@pytest.mark.no_nplusone(threshold=3)
def test_the_no_nplusone_marker_lets_a_constant_query_count_pass(db):
    for _ in range(3):
        make_customer(make_organization())
    list(Customer.objects.select_related("organization"))


def item_with(**markers):
    """What the plugin's hook reads of a pytest item: its closest marker of a name."""
    return SimpleNamespace(nodeid="tests/example.py::test_example", get_closest_marker=markers.get)


def test_the_no_nplusone_marker_fails_a_test_that_runs_an_n_plus_one(db):
    for _ in range(4):
        make_customer(make_organization())
    item = item_with(no_nplusone=pytest.mark.no_nplusone(threshold=3).mark)
    hook = pytest_plugin.pytest_runtest_call(item)
    next(hook)
    for customer in Customer.objects.all():
        customer.organization.name  # noqa: B018

    with pytest.raises(AssertionError, match=f"n_plus_one: 4 x at {THIS_FILE}:"):
        hook.send(None)


def test_allow_nplusone_exempts_a_test_from_its_modules_marker(db):
    for _ in range(4):
        make_customer(make_organization())
    item = item_with(
        no_nplusone=pytest.mark.no_nplusone(threshold=3).mark,
        allow_nplusone=pytest.mark.allow_nplusone(reason="loops on purpose").mark,
    )
    hook = pytest_plugin.pytest_runtest_call(item)
    next(hook)
    for customer in Customer.objects.all():
        customer.organization.name  # noqa: B018

    with pytest.raises(StopIteration):
        hook.send(None)


def test_allow_nplusone_without_a_reason_is_a_usage_error():
    item = item_with(
        no_nplusone=pytest.mark.no_nplusone.mark,
        allow_nplusone=pytest.mark.allow_nplusone.mark,
    )

    with pytest.raises(pytest.UsageError, match="allow_nplusone needs a reason"):
        next(pytest_plugin.pytest_runtest_call(item))


def test_a_failing_inspector_never_breaks_the_query(db, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("inspector bug")

    monkeypatch.setattr(inspector.Unit, "record", broken)
    with detect_nplusone(), connection.cursor() as cursor:
        assert select_value(cursor, 7) == (7,)

    assert "query inspector failed to record a query" in caplog.text
