"""The flusher thread, the last flush at exit, the minute summary and retention."""

import datetime as dt
import io
import os
import threading
import time

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from apps.common import flusher
from apps.observability.telemetry import aggregation as telemetry
from apps.observability.telemetry.models import (
    ErrorGroup,
    RequestMinute,
    RequestQuarterHour,
    SlowRequest,
)


@pytest.fixture(autouse=True)
def fresh_flusher(monkeypatch):
    """No flusher in this process before the test; the one a test starts is stopped after it."""
    telemetry.aggregator.take()
    telemetry.aggregator.take_summaries()
    monkeypatch.setattr(flusher, "_started_pid", None)
    monkeypatch.setattr(flusher, "_stop", threading.Event())
    monkeypatch.setattr(flusher, "_last_prune", None)
    yield
    flusher._stop.set()
    telemetry.aggregator.take()
    telemetry.aggregator.take_summaries()


class RecordingLogger:
    def __init__(self):
        self.events = []

    def info(self, event, **fields):
        self.events.append((event, fields))

    warning = exception = info


def record(count=1, status=200, duration_ms=10.0, started_at=None):
    for _ in range(count):
        telemetry.record_request(
            route="/flusher/",
            method="GET",
            status=status,
            duration_ms=duration_ms,
            started_at=started_at,
        )


@override_settings(TELEMETRY_FLUSH_SECONDS=0)
def test_a_process_has_started_its_flusher_only_once_it_asked_for_it():
    assert not flusher.is_started()

    flusher.ensure_started()

    assert flusher.is_started()


@override_settings(TELEMETRY_FLUSH_SECONDS=0)
def test_no_thread_when_the_interval_is_zero():
    before = threading.active_count()

    flusher.ensure_started()

    assert threading.active_count() == before


@pytest.mark.django_db(transaction=True)
@override_settings(TELEMETRY_FLUSH_SECONDS=0.2)
def test_the_thread_starts_on_demand_once_per_process_and_writes_periodically():
    record(count=3)

    flusher.ensure_started()
    flusher.ensure_started()

    threads = [thread for thread in threading.enumerate() if thread.name == "telemetry-flusher"]
    assert len([thread for thread in threads if thread.is_alive()]) >= 1
    deadline = time.monotonic() + 10
    while not RequestMinute.objects.filter(route="/flusher/").exists():
        assert time.monotonic() < deadline, "the flusher never wrote"
        time.sleep(0.05)
    flusher._stop.set()
    assert RequestMinute.objects.get(route="/flusher/").requests == 3


@pytest.mark.skipif(
    connection.vendor == "sqlite", reason="Django never closes the in-memory SQLite test database"
)
@pytest.mark.django_db(transaction=True)
def test_a_flush_cycle_closes_its_connection():
    record(count=2)
    closed = []

    def cycle_in_a_thread_of_its_own():
        flusher.flush_cycle()
        closed.append(connection.connection is None)

    thread = threading.Thread(target=cycle_in_a_thread_of_its_own)
    thread.start()
    thread.join(30)

    assert closed == [True]
    assert RequestMinute.objects.get().requests == 2


@pytest.mark.django_db
def test_flush_at_exit_writes_everything_and_logs_the_current_minute(monkeypatch):
    log = RecordingLogger()
    monkeypatch.setattr(telemetry, "logger", log)
    monkeypatch.setattr(flusher, "close_all_connections", lambda: None)  # the test's transaction
    monkeypatch.setattr(flusher, "_started_pid", os.getpid())
    record(count=9, duration_ms=20.0)
    record(count=1, status=500, duration_ms=1500.0)

    flusher.flush_at_exit()

    assert RequestMinute.objects.get().requests == 10
    ((event, fields),) = log.events
    assert event == "request_minute_summary"
    assert fields["requests"] == 10
    assert fields["latency_avg_ms"] == round((9 * 20 + 1500) / 10, 2)
    assert fields["error_rate"] == 0.1
    assert fields["latency_p95_ms"] >= 1000


def test_a_process_that_served_nothing_does_not_flush_at_exit(monkeypatch):
    monkeypatch.setattr(telemetry, "flush_telemetry", lambda: pytest.fail("flushed"))

    flusher.flush_at_exit()


def test_one_summary_line_per_finished_minute(monkeypatch):
    log = RecordingLogger()
    monkeypatch.setattr(telemetry, "logger", log)
    now = telemetry.minute_start(time.time())
    record(count=4, started_at=now - 120, duration_ms=100.0)
    record(count=2, started_at=now - 60, status=503)
    record(count=1, started_at=now)

    telemetry.log_minute_summaries(before_minute=now)

    assert [fields["requests"] for _, fields in log.events] == [4, 2]
    assert log.events[1][1]["error_rate"] == 1.0
    assert log.events[0][1]["latency_avg_ms"] == 100.0
    # The current minute is logged once it is over.
    telemetry.log_minute_summaries(before_minute=now + 60)
    assert [fields["requests"] for _, fields in log.events] == [4, 2, 1]


# --- Retention ------------------------------------------------------------------------------------


def recent_cutoff():
    return timezone.now() - dt.timedelta(days=1)


def add_old_and_new_rows(days_old):
    old = timezone.now() - dt.timedelta(days=days_old)
    new = timezone.now() - dt.timedelta(minutes=5)
    for number, moment in enumerate([old, old, old, new]):
        minute = moment.replace(second=0, microsecond=0) - dt.timedelta(minutes=number)
        RequestMinute.objects.create(minute=minute, route="/r/", method="GET", requests=1)
        quarter_hour = minute.replace(minute=minute.minute - minute.minute % 15)
        RequestQuarterHour.objects.get_or_create(
            quarter_hour=quarter_hour, route="/r/", method="GET", defaults={"requests": 1}
        )
        SlowRequest.objects.create(
            started_at=moment, method="GET", route="/r/", path="/r/", status=200, duration_ms=2000
        )
        ErrorGroup.objects.create(
            fingerprint=f"f{number}",
            exception_class="E",
            frame="f",
            route="/r/",
            method="GET",
            count=1,
            first_seen=moment,
            last_seen=moment,
        )


@pytest.mark.django_db
@override_settings(TELEMETRY_RETENTION_DAYS=14)
def test_prune_telemetry_deletes_what_is_older_than_the_retention_in_batches():
    add_old_and_new_rows(days_old=15)
    output = io.StringIO()

    call_command("prune_telemetry", "--batch-size", "2", stdout=output)

    assert RequestMinute.objects.count() == 1
    assert RequestQuarterHour.objects.filter(quarter_hour__gte=recent_cutoff()).count() == 1
    assert not RequestQuarterHour.objects.filter(quarter_hour__lt=recent_cutoff()).exists()
    assert SlowRequest.objects.count() == 1
    assert ErrorGroup.objects.count() == 1
    assert "3 requestminute, " in output.getvalue()
    assert "requestquarterhour, 3 slowrequest, 3 errorgroup" in output.getvalue()


@pytest.mark.django_db
def test_prune_telemetry_accepts_a_shorter_retention():
    add_old_and_new_rows(days_old=3)

    call_command("prune_telemetry", "--days", "2", stdout=io.StringIO())

    assert RequestMinute.objects.count() == 1


@pytest.mark.django_db
@override_settings(TELEMETRY_RETENTION_DAYS=14)
def test_the_flusher_prunes_at_most_once_an_hour():
    cache.delete(flusher.PRUNE_LOCK_KEY)
    add_old_and_new_rows(days_old=20)

    flusher.prune_if_due()
    assert RequestMinute.objects.count() == 1

    old = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(days=20)
    RequestMinute.objects.create(minute=old, route="/later/", method="GET", requests=1)
    flusher.prune_if_due()
    assert RequestMinute.objects.count() == 2  # not due again within the hour
    cache.delete(flusher.PRUNE_LOCK_KEY)
