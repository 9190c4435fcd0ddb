"""Request and query metrics kept in the process and written by the flusher (metrics/pending.py)."""

import gc
import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django_prometheus.db import execute_total, query_duration_seconds
from prometheus_client import CollectorRegistry, Counter, Histogram

from apps.observability.metrics import pending
from apps.observability.metrics import registry as metrics
from apps.observability.metrics.pending import PendingUpdates, observe_all

BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, float("inf"))
LATENCIES = [0.0, 0.01, 0.010001, 0.2, 0.5, 0.7, 3.0, 0.05, 0.05, 12.5]


def samples(metric):
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in metric.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def buffered_updates():
    updates = PendingUpdates()
    updates._buffered = True
    return updates


def test_a_batch_of_observations_equals_observing_them_one_by_one():
    registry = CollectorRegistry()
    one_by_one = Histogram("one_by_one", "h", ["view"], buckets=BUCKETS, registry=registry)
    batched = Histogram("batched", "h", ["view"], buckets=BUCKETS, registry=registry)
    for latency in LATENCIES:
        one_by_one.labels("a").observe(latency)
    observe_all(batched.labels("a"), LATENCIES)

    expected = {
        (name.replace("one_by_one", "batched"), labels): value
        for (name, labels), value in samples(one_by_one).items()
    }
    assert samples(batched) == pytest.approx(expected)


def test_buffered_updates_are_written_only_when_the_flusher_writes_them(monkeypatch):
    monkeypatch.setattr(pending.flusher, "ensure_started", lambda: None)
    registry = CollectorRegistry()
    counter = Counter("requests", "c", ["status"], registry=registry)
    latency = Histogram("latency", "h", buckets=BUCKETS, registry=registry)
    updates = buffered_updates()

    for value in LATENCIES:
        updates.add((counter.labels("200"), 1), (latency, value))
    assert samples(counter)[("requests_total", (("status", "200"),))] == 0
    assert samples(latency)[("latency_count", ())] == 0

    updates.flush_job(final=False)
    assert samples(counter)[("requests_total", (("status", "200"),))] == len(LATENCIES)
    assert samples(latency)[("latency_count", ())] == len(LATENCIES)
    assert samples(latency)[("latency_sum", ())] == pytest.approx(sum(LATENCIES))

    updates.write()  # nothing left: nothing counted twice
    assert samples(counter)[("requests_total", (("status", "200"),))] == len(LATENCIES)


def test_updates_added_while_writers_run_are_each_written_once(monkeypatch):
    monkeypatch.setattr(pending.flusher, "ensure_started", lambda: None)
    counter = Counter("racing", "c", registry=CollectorRegistry())
    updates = buffered_updates()
    per_thread, threads = 20000, 4

    def add():
        for _ in range(per_thread):
            updates.add((counter, 1))

    adders = [threading.Thread(target=add) for _ in range(threads)]
    for thread in adders:
        thread.start()
    while any(thread.is_alive() for thread in adders):
        updates.write()
    for thread in adders:
        thread.join()
    updates.write()

    assert samples(counter)[("racing_total", ())] == per_thread * threads


def test_pending_updates_give_the_garbage_collector_nothing_to_walk(monkeypatch):
    monkeypatch.setattr(pending.flusher, "ensure_started", lambda: None)
    registry = CollectorRegistry()
    counter = Counter("tracked", "c", registry=registry)
    latency = Histogram("tracked_latency", "h", buckets=BUCKETS, registry=registry)
    updates = buffered_updates()
    requests = 1000

    tracked_before = len(gc.get_objects())
    for value in LATENCIES * (requests // len(LATENCIES)):
        updates.add((counter, 1), (latency, value))
    kept = len(gc.get_objects()) - tracked_before

    assert kept < requests // 10
    updates.write()
    assert samples(counter)[("tracked_total", ())] == requests


def test_without_multiprocess_mode_updates_are_applied_at_once(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    counter = Counter("direct", "c", registry=CollectorRegistry())
    updates = PendingUpdates()

    updates.add((counter, 1))

    assert samples(counter)[("direct_total", ())] == 1


def test_a_failed_write_counts_lost_prometheus_work(monkeypatch):
    monkeypatch.setattr(pending.flusher, "ensure_started", lambda: None)

    class Broken:
        def inc(self, amount):
            raise OSError("disk full")

    failures = metrics.AFTER_RESPONSE_FAILURES.labels("prometheus")
    before = failures._value.get()
    updates = buffered_updates()
    updates.add((Broken(), 1))

    with pytest.raises(OSError, match="disk full"):
        updates.flush_job(final=True)
    assert failures._value.get() == before + 1


@pytest.fixture
def query_metrics():
    """() -> (statements counted, durations observed) of the default database, as now."""
    executed = execute_total.labels("default", connection.vendor)
    durations = query_duration_seconds.labels("default", connection.vendor)
    return lambda: (executed._value.get(), samples(durations))


@pytest.fixture
def multiprocess_mode(monkeypatch):
    monkeypatch.setattr(pending.request_updates, "_buffered", True)
    pending.request_updates.write()


@pytest.mark.django_db
def test_query_counts_and_durations_of_a_serving_worker_wait_for_its_flusher(
    monkeypatch, multiprocess_mode, query_metrics
):
    monkeypatch.setattr(pending.flusher, "is_started", lambda: True)
    executed_before, observed_before = query_metrics()

    get_user_model().objects.count()
    assert query_metrics() == (executed_before, observed_before)

    pending.request_updates.write()
    executed_after, observed_after = query_metrics()
    assert executed_after == executed_before + 1
    assert sum(observed_after.values()) > sum(observed_before.values())


@pytest.mark.django_db
def test_query_metrics_of_a_process_that_started_no_flusher_are_written_at_once(
    monkeypatch, multiprocess_mode, query_metrics
):
    monkeypatch.setattr(pending.flusher, "is_started", lambda: False)
    started = []
    monkeypatch.setattr(pending.flusher, "ensure_started", lambda: started.append(1))
    executed_before, _ = query_metrics()

    get_user_model().objects.count()

    assert query_metrics()[0] == executed_before + 1
    assert started == []
