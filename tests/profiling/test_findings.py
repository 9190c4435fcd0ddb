"""Query findings off the request path: the buffer, the upsert, the status, failures, retention."""

import datetime as dt
import io
import time

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import OperationalError, connection
from django.test import override_settings
from django.utils import timezone
from prometheus_client import REGISTRY

from apps.common import flusher
from apps.profiling import findings
from apps.profiling.models import QueryFinding
from tests.profiling.conftest import n_plus_one_report

pytestmark = pytest.mark.django_db

SOURCE = "/findings-test/<int:pk>/"


def counter(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def record(report=None, source=SOURCE, at=None, **fields):
    return findings.record_findings(
        report or n_plus_one_report(), source=source, at=at or time.time(), **fields
    )


def refuse_finding_writes(execute, sql, params, many, context):
    """The database as seen during an outage, for the findings table only."""
    if QueryFinding._meta.db_table in sql:
        raise OperationalError("server closed the connection unexpectedly")
    return execute(sql, params, many, context)


# --- The buffer ----------------------------------------------------------------------------------


def test_a_finding_is_buffered_and_only_written_by_the_flush():
    record()

    assert QueryFinding.objects.count() == 0
    assert len(findings.buffer) == 1
    assert findings.flush_findings() == 1
    assert len(findings.buffer) == 0
    assert QueryFinding.objects.count() == 1


def test_each_finding_is_counted_by_kind():
    before = counter("orders_query_findings_total", kind="n_plus_one")

    record()
    record()

    assert counter("orders_query_findings_total", kind="n_plus_one") == before + 2


def test_the_buffer_is_bounded_and_drops_new_findings_when_full(monkeypatch):
    monkeypatch.setattr(findings, "MAX_BUFFERED_FINDINGS", 2)
    before = counter("orders_query_findings_dropped_total")
    report = n_plus_one_report()

    for number in range(4):
        record(report, source=f"/route-{number}/")
    record(report, source="/route-0/")  # a known key still merges

    kept = findings.buffer.take()
    assert sorted(pending.source for pending in kept.values()) == ["/route-0/", "/route-1/"]
    assert max(pending.occurrences for pending in kept.values()) == 2
    assert counter("orders_query_findings_dropped_total") == before + 2


# --- The upsert ----------------------------------------------------------------------------------


def test_flushes_add_into_one_row_per_finding_and_source():
    start = time.time() - 60
    record(n_plus_one_report(repeats=4), at=start, request_id="request-1")
    record(n_plus_one_report(repeats=7), at=start + 10, request_id="request-2")
    findings.flush_findings()
    record(n_plus_one_report(repeats=5), at=start + 20, request_id="request-3")
    findings.flush_findings()

    row = QueryFinding.objects.get()
    assert (row.kind, row.source, row.status) == ("n_plus_one", SOURCE, "new")
    assert row.occurrences == 3
    assert row.max_repeats == 7
    assert row.callsite.startswith("tests/profiling/conftest.py:")
    assert row.sample_sql == "SELECT %s"
    assert row.first_seen == dt.datetime.fromtimestamp(start, tz=dt.UTC)
    assert row.last_seen == dt.datetime.fromtimestamp(start + 20, tz=dt.UTC)
    assert row.last_request_id == "request-3"
    assert row.key == findings.finding_key(row.kind, row.fingerprint, row.callsite, row.source)


def test_total_time_adds_up_and_the_slowest_execution_is_kept():
    first, second = n_plus_one_report(), n_plus_one_report()
    record(first)
    findings.flush_findings()
    record(second)
    findings.flush_findings()

    row = QueryFinding.objects.get()
    (one,), (two,) = first.all_findings, second.all_findings
    assert row.total_ms == pytest.approx(one.total_ms + two.total_ms, abs=0.01)
    assert row.max_ms == pytest.approx(max(one.max_ms, two.max_ms), abs=0.01)


def test_the_same_finding_from_two_sources_is_two_rows():
    report = n_plus_one_report()
    record(report, source="/a/")
    record(report, source="command seed_demo")
    findings.flush_findings()

    assert sorted(QueryFinding.objects.values_list("source", flat=True)) == [
        "/a/",
        "command seed_demo",
    ]


def test_an_older_occurrence_flushed_later_keeps_the_newest_request_id():
    now = time.time()
    record(at=now, request_id="newest")
    findings.flush_findings()
    record(at=now - 30, request_id="older")  # buffered by another process, flushed later
    findings.flush_findings()

    row = QueryFinding.objects.get()
    assert row.last_request_id == "newest"
    assert row.last_seen == dt.datetime.fromtimestamp(now, tz=dt.UTC)
    assert row.first_seen == dt.datetime.fromtimestamp(now - 30, tz=dt.UTC)


def test_the_newest_silk_record_is_kept_and_never_replaced_by_none():
    now = time.time()
    record(at=now - 20, silk_request_id="11111111-1111-4111-8111-111111111111")
    findings.flush_findings()
    record(at=now - 10, silk_request_id="22222222-2222-4222-8222-222222222222")
    findings.flush_findings()
    record(at=now)  # this request was not recorded by silk
    findings.flush_findings()

    assert QueryFinding.objects.get().silk_request_id == "22222222-2222-4222-8222-222222222222"


def test_long_call_sites_and_sources_fit_their_columns():
    report = n_plus_one_report()
    (finding,) = report.all_findings
    long_report = type(report)([type(finding)(**{**vars(finding), "callsite": "x" * 900})])

    record(long_report, source="/" + "r" * 400, request_id="q" * 100)
    assert findings.flush_findings() == 1

    row = QueryFinding.objects.get()
    assert (len(row.callsite), len(row.source), len(row.last_request_id)) == (500, 255, 64)


# --- Status --------------------------------------------------------------------------------------


def test_a_fixed_finding_seen_again_is_new_again():
    record(at=time.time() - 60)
    findings.flush_findings()
    fixed_at = timezone.now() - dt.timedelta(seconds=30)
    QueryFinding.objects.update(status=QueryFinding.Status.FIXED, status_changed_at=fixed_at)

    seen_again = time.time()
    record(at=seen_again)
    findings.flush_findings()

    row = QueryFinding.objects.get()
    assert row.status == QueryFinding.Status.NEW
    assert row.status_changed_at == dt.datetime.fromtimestamp(seen_again, tz=dt.UTC)
    assert row.occurrences == 2


def test_an_occurrence_from_before_the_fix_does_not_reopen_it():
    record(at=time.time() - 60)
    findings.flush_findings()
    fixed_at = timezone.now()
    QueryFinding.objects.update(status=QueryFinding.Status.FIXED, status_changed_at=fixed_at)

    record(at=time.time() - 30)  # buffered before the fix, flushed after it
    findings.flush_findings()

    row = QueryFinding.objects.get()
    assert (row.status, row.status_changed_at, row.occurrences) == ("fixed", fixed_at, 2)


@pytest.mark.parametrize("status", ["acknowledged", "ignored"])
def test_acknowledged_and_ignored_findings_keep_their_status_when_seen_again(status):
    record(at=time.time() - 60)
    findings.flush_findings()
    changed_at = timezone.now() - dt.timedelta(seconds=30)
    QueryFinding.objects.update(status=status, status_changed_at=changed_at)

    record()
    findings.flush_findings()

    row = QueryFinding.objects.get()
    assert (row.status, row.status_changed_at) == (status, changed_at)


# --- Failures ------------------------------------------------------------------------------------


def test_a_failed_flush_does_not_raise_and_is_counted():
    record()
    before = counter("orders_query_findings_flush_failures_total")

    with connection.execute_wrapper(refuse_finding_writes):
        assert findings.flush_findings() == 0

    assert counter("orders_query_findings_flush_failures_total") == before + 1
    assert QueryFinding.objects.count() == 0


def test_a_failed_flush_keeps_the_buffer_and_the_next_one_writes_it_once():
    record(request_id="during-the-outage")
    with connection.execute_wrapper(refuse_finding_writes):
        findings.flush_findings()
    record(request_id="after-the-outage")  # arrives while the database is down

    assert findings.flush_findings() == 1
    assert findings.flush_findings() == 0

    row = QueryFinding.objects.get()
    assert row.occurrences == 2
    assert row.last_request_id == "after-the-outage"


# --- The flusher and retention -------------------------------------------------------------------


def test_the_flusher_cycle_writes_the_findings(monkeypatch):
    monkeypatch.setattr(flusher, "close_all_connections", lambda: None)  # the test's transaction
    record()

    flusher.flush_cycle(final=True)

    assert QueryFinding.objects.get().occurrences == 1


def add_finding(source, last_seen):
    return QueryFinding.objects.create(
        key=findings.finding_key("slow", "f" * 16, "apps/x.py:1", source),
        kind="slow",
        fingerprint="f" * 16,
        sample_sql="SELECT %s",
        callsite="apps/x.py:1",
        source=source,
        first_seen=last_seen,
        last_seen=last_seen,
    )


@override_settings(TELEMETRY_RETENTION_DAYS=14)
def test_prune_telemetry_deletes_findings_last_seen_before_the_retention():
    for number in range(3):
        add_finding(f"/old-{number}/", timezone.now() - dt.timedelta(days=15))
    add_finding("/recent/", timezone.now() - dt.timedelta(days=13))
    output = io.StringIO()

    call_command("prune_telemetry", "--batch-size", "2", stdout=output)

    assert list(QueryFinding.objects.values_list("source", flat=True)) == ["/recent/"]
    assert "3 queryfinding" in output.getvalue()


@override_settings(TELEMETRY_RETENTION_DAYS=14)
def test_the_flusher_prunes_old_findings_with_the_telemetry(monkeypatch):
    monkeypatch.setattr(flusher, "_last_prune", None)
    cache.delete(flusher.PRUNE_LOCK_KEY)
    add_finding("/old/", timezone.now() - dt.timedelta(days=20))
    add_finding("/recent/", timezone.now())

    flusher.prune_if_due()
    cache.delete(flusher.PRUNE_LOCK_KEY)

    assert list(QueryFinding.objects.values_list("source", flat=True)) == ["/recent/"]
