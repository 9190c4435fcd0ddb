"""Replica routing: which replicas are in rotation, and where a heavy read goes."""

import time

import pytest
from django.db import OperationalError, ProgrammingError
from django.test import override_settings

from apps.common import breakers, replicas
from apps.common.replicas import DOWN, IN_ROTATION, LAGGING, ReplicaState, classify

REPLICAS = ["replica_1", "replica_2"]


@pytest.fixture(autouse=True)
def fresh_breakers():
    breakers.reset_breakers()
    yield
    breakers.reset_breakers()


@pytest.fixture
def monitor(monkeypatch):
    """Two replicas that nothing checks in the background; the test records their states."""
    fake = replicas.ReplicaMonitor(aliases=lambda: REPLICAS, check_in_background=False)
    monkeypatch.setattr(replicas, "monitor", fake)
    return fake


def in_rotation(alias, lag=0.1):
    return ReplicaState(alias, IN_ROTATION, lag, "", checked_at=time.time())


@override_settings(DB_REPLICA_MAX_LAG_SECONDS=30)
def test_a_replica_within_the_lag_limit_is_in_rotation():
    assert classify("replica_1", True, 29.9).state == IN_ROTATION


@override_settings(DB_REPLICA_MAX_LAG_SECONDS=30)
def test_a_replica_beyond_the_lag_limit_is_lagging():
    state = classify("replica_1", True, 30.5)
    assert (state.state, state.lag_seconds) == (LAGGING, 30.5)


def test_a_replica_that_has_replayed_nothing_yet_is_lagging():
    assert classify("replica_1", True, None).state == LAGGING


def test_a_server_not_in_recovery_counts_as_caught_up():
    assert classify("replica_1", False, None).state == IN_ROTATION


def test_a_replica_never_checked_is_out_of_rotation(monitor):
    assert monitor.states()["replica_1"].state == DOWN


def test_heavy_reads_go_only_to_replicas_in_rotation(monitor):
    monitor.record(in_rotation("replica_1"))
    monitor.record(ReplicaState("replica_2", LAGGING, 45.0, "lags"))

    assert {replicas.read_replica_alias() for _ in range(50)} == {"replica_1"}


def test_heavy_reads_go_to_the_primary_when_no_replica_is_in_rotation(monitor):
    monitor.record(ReplicaState("replica_1", DOWN, None, "unreachable"))
    monitor.record(ReplicaState("replica_2", LAGGING, 45.0, "lags"))

    assert replicas.read_replica_alias() == "default"


def test_a_replica_whose_connections_fail_leaves_the_rotation_before_its_next_check(monitor):
    monitor.record(in_rotation("replica_1"))
    monitor.record(in_rotation("replica_2"))

    breakers.breaker("replica_2").record_failure(OperationalError("connection refused"))

    assert monitor.states()["replica_2"].state == DOWN
    assert {replicas.read_replica_alias() for _ in range(50)} == {"replica_1"}


def test_a_replica_comes_back_once_a_check_finds_it_healthy(monitor):
    breakers.breaker("replica_1").record_failure(OperationalError("connection refused"))
    breakers.breaker("replica_1").record_success()
    monitor.record(in_rotation("replica_1"))

    assert monitor.states()["replica_1"].in_rotation


def test_a_read_that_fails_on_a_replica_runs_again_on_the_primary(monitor):
    monitor.record(in_rotation("replica_1"))
    monitor.record(in_rotation("replica_2"))
    asked = []

    def read(alias):
        asked.append(alias)
        if alias != "default":
            raise OperationalError("server closed the connection unexpectedly")
        return "rows"

    assert replicas.read_on_replica(read) == "rows"
    assert asked[-1] == "default"
    assert monitor.states()[asked[0]].state == DOWN


def test_a_mistake_in_the_query_is_not_retried_on_the_primary(monitor):
    monitor.record(in_rotation("replica_1"))
    monitor.record(in_rotation("replica_2"))

    def read(alias):
        raise ProgrammingError("syntax error")

    with pytest.raises(ProgrammingError):
        replicas.read_on_replica(read)


def test_a_writer_reads_the_primary(monitor):
    monitor.record(in_rotation("replica_1"))
    monitor.record(in_rotation("replica_2"))

    assert replicas.read_on_replica(lambda alias: alias, primary=True) == "default"


@override_settings(DB_REPLICA_STICKY_SECONDS=5)
def test_a_write_pins_the_primary_at_least_as_long_as_the_replicas_lag(monitor):
    monitor.record(in_rotation("replica_1", lag=12.0))
    monitor.record(ReplicaState("replica_2", LAGGING, 400.0, "lags"))

    assert replicas.sticky_seconds() == 13.0


@override_settings(DB_REPLICA_CHECK_SECONDS=1)
def test_a_replica_whose_checks_stopped_answering_leaves_the_rotation(monitor):
    monitor.record(in_rotation("replica_1"))
    stuck_since = time.time() - 10
    monitor.record(ReplicaState("replica_2", IN_ROTATION, 0.1, "", checked_at=stuck_since))

    assert monitor.states()["replica_2"].state == DOWN
    assert {replicas.read_replica_alias() for _ in range(50)} == {"replica_1"}
