"""The check runner and each check, in this process."""

import dataclasses
import logging
import threading

import pytest
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings
from health_check import HealthCheck
from health_check.exceptions import ServiceUnavailable, ServiceWarning

from apps.observability.health import checks as health

DUMMY_CACHE = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}


@dataclasses.dataclass
class StubCheck(HealthCheck):
    name: str = "stub"
    error: Exception | None = None
    required: bool = True

    def run(self):
        if self.error is not None:
            raise self.error
        return {"message": "fine"}


@dataclasses.dataclass(eq=False)
class BlockingCheck(HealthCheck):
    """Runs until released, like a check stuck on a dependency that never answers."""

    name: str = "blocking"
    required: bool = True
    release: threading.Event = dataclasses.field(default_factory=threading.Event, repr=False)
    runs: list = dataclasses.field(default_factory=list, repr=False)

    def run(self):
        self.runs.append(threading.current_thread().name)
        self.release.wait(timeout=30)


@pytest.fixture
def blocking_check():
    check = BlockingCheck(name=f"blocking-{id(object())}")
    yield check
    check.release.set()


def only_result(checks, **kwargs):
    (result,) = health.run_checks(checks, **kwargs)
    return result


def test_a_check_that_hangs_fails_when_the_deadline_passes(blocking_check):
    result = only_result([blocking_check], timeout=0.1)

    assert result.status == health.FAILING
    assert result.message == "timed out after 0.1 s"


def test_a_probe_joins_a_check_still_running_instead_of_starting_another(blocking_check):
    health.run_checks([blocking_check], timeout=0.05)
    health.run_checks([blocking_check], timeout=0.05)

    assert len(blocking_check.runs) == 1


def test_an_optional_check_that_fails_is_degraded():
    result = only_result([StubCheck(error=ServiceUnavailable("gone"), required=False)])

    assert (result.status, result.message) == (health.DEGRADED, "gone")


def test_a_required_check_that_fails_is_failing():
    result = only_result([StubCheck(error=ServiceUnavailable("gone"))])

    assert (result.status, result.message) == (health.FAILING, "gone")


def test_a_warning_is_reported_as_a_warning_even_for_a_required_check():
    result = only_result([StubCheck(error=ServiceWarning("almost full"))])

    assert (result.status, result.message) == (health.WARNING, "almost full")


def test_an_unexpected_exception_is_reported_by_its_type_only():
    result = only_result([StubCheck(error=RuntimeError("password=hunter2"))])

    assert result.status == health.FAILING
    assert result.message == "unexpected error (RuntimeError)"


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([health.OK, health.WARNING], health.WARNING),
        ([health.WARNING, health.DEGRADED], health.DEGRADED),
        ([health.DEGRADED, health.FAILING, health.OK], health.FAILING),
        ([health.OK, health.OK], health.OK),
    ],
)
def test_the_overall_status_is_the_worst_one(statuses, expected):
    results = [health.CheckResult("x", status, "", 0.0) for status in statuses]

    assert health.overall_status(results) == expected


@pytest.mark.django_db
def test_the_database_check_closes_its_connection_in_its_own_thread(monkeypatch):
    wrapper_class = type(connections["default"])
    original_close = wrapper_class.close
    closed_in = []

    def recording_close(self):
        closed_in.append(threading.current_thread().name)
        return original_close(self)

    monkeypatch.setattr(wrapper_class, "close", recording_close)

    result = only_result([health.DatabaseCheck()])

    assert result.status == health.OK
    assert "health-check-database" in closed_in


@pytest.mark.django_db
def test_the_database_check_returns_its_connection_to_the_pool():
    if health.pool_statistics("default") is None:
        pytest.skip("the connection pool exists on PostgreSQL only")

    def connections_in_use():
        statistics = health.pool_statistics("default")
        return statistics["pool_size"] - statistics["pool_available"]

    before = connections_in_use()
    for _ in range(5):
        assert only_result([health.DatabaseCheck()]).status == health.OK

    assert connections_in_use() == before


@pytest.mark.django_db
def test_the_migrations_check_fails_while_a_migration_is_not_applied(monkeypatch):
    monkeypatch.setattr(
        MigrationExecutor, "migration_plan", lambda self, targets: [("migration", False)]
    )

    result = only_result([health.MigrationsCheck()])

    assert (result.status, result.message) == (health.FAILING, "1 migration(s) not applied")


@pytest.mark.django_db
def test_the_migrations_check_stops_asking_once_everything_is_applied(monkeypatch):
    plans = []
    original_plan = MigrationExecutor.migration_plan

    def counting_plan(self, targets):
        plans.append(targets)
        return original_plan(self, targets)

    monkeypatch.setattr(MigrationExecutor, "migration_plan", counting_plan)

    results = [only_result([health.MigrationsCheck()]) for _ in range(3)]

    assert [result.status for result in results] == [health.OK] * 3
    assert len(plans) == 1


def fake_pool(monkeypatch, **statistics):
    monkeypatch.setattr(health, "pool_statistics", lambda alias, open_pool=False: statistics)


def test_the_pool_check_fails_when_every_connection_is_taken_and_requests_wait(monkeypatch):
    fake_pool(monkeypatch, pool_max=4, pool_size=4, pool_available=0, requests_waiting=2)

    result = only_result([health.ConnectionPoolCheck()])

    assert (result.status, result.message) == (
        health.FAILING,
        "exhausted: 4/4 in use, 2 waiting",
    )


def test_the_pool_check_passes_while_every_connection_is_busy_but_nobody_waits(monkeypatch):
    fake_pool(monkeypatch, pool_max=4, pool_size=4, pool_available=0, requests_waiting=0)

    result = only_result([health.ConnectionPoolCheck()])

    assert (result.status, result.message) == (health.OK, "4/4 in use, 0 waiting")


def test_a_cache_that_loses_what_was_written_is_degraded():
    with override_settings(CACHES=DUMMY_CACHE):
        result = only_result([health.CacheCheck()])

    assert result.status == health.DEGRADED


def test_the_cache_check_passes_on_a_working_cache():
    assert only_result([health.CacheCheck()]).status == health.OK


def test_the_disk_check_warns_above_its_threshold():
    assert only_result([health.DiskCheck(max_usage_percent=0)]).status == health.WARNING


def test_the_memory_check_warns_above_its_threshold():
    if health.memory_usage() is None:
        pytest.skip("no /proc/meminfo or cgroup memory files here")

    assert only_result([health.MemoryCheck(max_usage_percent=0)]).status == health.WARNING


# --- What the checks log --------------------------------------------------------------------------

DATABASE_DOWN = ServiceUnavailable("connection refused")


@pytest.fixture
def health_log(caplog):
    """(level, message) of each line the health checks log from here on."""
    caplog.set_level(logging.INFO, logger=health.logger.name)

    def lines():
        return [
            (record.levelname, record.getMessage())
            for record in caplog.records
            if record.name == health.logger.name
        ]

    return lines


def probe(*checks):
    for check in checks:
        health.run_checks([check])


def test_a_check_failing_probe_after_probe_is_logged_once_as_a_warning(health_log):
    probe(
        StubCheck(name="database", error=DATABASE_DOWN),
        StubCheck(name="database", error=DATABASE_DOWN),
    )

    assert health_log() == [("WARNING", "health check database: connection refused")]


def test_a_check_that_passes_again_is_logged_once_at_info(health_log):
    failing = StubCheck(name="database", error=DATABASE_DOWN)
    passing = StubCheck(name="database")

    probe(failing, failing, passing, passing)

    assert health_log() == [
        ("WARNING", "health check database: connection refused"),
        ("INFO", "health check database: passes again (was: connection refused)"),
    ]


def test_a_check_that_passes_from_the_start_logs_nothing(health_log):
    probe(StubCheck(name="database"), StubCheck(name="database"))

    assert health_log() == []


def test_a_failing_optional_check_is_logged_once_at_info(health_log):
    cache_down = StubCheck(name="cache", error=ServiceUnavailable("unreachable"), required=False)

    probe(cache_down, cache_down)

    assert health_log() == [("INFO", "health check cache: unreachable")]


def test_each_check_is_logged_on_its_own(health_log):
    database_down = StubCheck(name="database", error=DATABASE_DOWN)
    cache_down = StubCheck(name="cache", error=ServiceUnavailable("unreachable"), required=False)

    probe(database_down, cache_down, database_down, cache_down, StubCheck(name="cache"))

    assert health_log() == [
        ("WARNING", "health check database: connection refused"),
        ("INFO", "health check cache: unreachable"),
        ("INFO", "health check cache: passes again (was: unreachable)"),
    ]


def test_an_unexpected_exception_is_logged_once_with_its_traceback(health_log, caplog):
    broken = StubCheck(name="database", error=RuntimeError("bug"))

    probe(broken, broken)

    assert health_log() == [("ERROR", "health check database raised")]
    (record,) = [record for record in caplog.records if record.name == health.logger.name]
    assert record.exc_info[1] is broken.error


def test_a_check_that_keeps_timing_out_is_logged_once(health_log, blocking_check):
    health.run_checks([blocking_check], timeout=0.05)
    health.run_checks([blocking_check], timeout=0.05)

    assert health_log() == [
        ("WARNING", f"health check {blocking_check.name}: timed out after 0.05 s")
    ]


def test_probes_at_the_same_time_log_a_failure_once(health_log):
    check = StubCheck(name="database", error=DATABASE_DOWN)
    result = health.CheckResult("database", health.FAILING, "connection refused", 1.0)
    start = threading.Barrier(8)

    def observe():
        start.wait()
        health.outcome_log.observe(check, result)

    threads = [threading.Thread(target=observe) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert health_log() == [("WARNING", "health check database: connection refused")]
