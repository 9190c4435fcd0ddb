"""orders_scaling_audit_pass and the run's time: from the last recorded run to /metrics."""

import datetime as dt

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from apps.audit import metrics as audit_metrics
from apps.audit.models import AuditRun
from apps.observability.metrics import registry
from tests.observability.conftest import (
    METRICS_TOKEN,
    bearer,
    environment_for_test_mode,
    wait_until,
)
from tests.processes import run_manage

pytestmark = [pytest.mark.django_db]


def samples(text, fail_on="critical"):
    """The audit's series for one gate: other tests of the process may have exported others."""
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("orders_scaling_audit")
        and sample.labels.get("fail_on", fail_on) == fail_on
    }


def record(passed, started_at, critical=0):
    return AuditRun.objects.create(
        started_at=started_at,
        duration_ms=10,
        passed=passed,
        fail_on="critical",
        window_minutes=60,
        instances=1,
        critical=critical,
        report={},
    )


@pytest.fixture(autouse=True)
def _read_again(monkeypatch):
    monkeypatch.setattr(audit_metrics, "_last_read", None)


def test_the_flusher_job_exports_the_newest_run():
    now = timezone.now().replace(microsecond=0)
    record(True, now - dt.timedelta(hours=1))
    record(False, now, critical=2)

    audit_metrics.export_last_run_job(final=False)

    exported = samples(registry.exposition().decode())
    assert exported["orders_scaling_audit_pass"] == 0
    assert exported["orders_scaling_audit_timestamp_seconds"] == now.timestamp()


def test_a_passing_run_exports_1():
    record(True, timezone.now())

    audit_metrics.export_last_run_job(final=False)

    assert samples(registry.exposition().decode())["orders_scaling_audit_pass"] == 1


def test_metrics_endpoint_carries_the_last_result(client, metrics_token):
    record(False, timezone.now(), critical=1)
    audit_metrics.export_last_run_job(final=False)

    response = client.get("/metrics", headers=bearer())

    assert samples(response.content.decode())["orders_scaling_audit_pass"] == 0


@pytest.mark.system
def test_gunicorn_workers_export_the_run_the_command_recorded(sqlite_database_url, start_gunicorn):
    environment = environment_for_test_mode(
        DATABASE_URL=sqlite_database_url,
        METRICS_TOKEN=METRICS_TOKEN,
        TELEMETRY_FLUSH_SECONDS="0.2",
    )
    audit = run_manage("scaling_audit", "--format", "json", environment=environment)
    assert audit.returncode in (0, 1), audit.stderr
    passed = audit.returncode == 0
    server = start_gunicorn(environment)
    server.get("/admin/login/")  # a request starts the worker's flusher

    def exported():
        text = server.get("/metrics", headers=bearer()).text
        return samples(text).get("orders_scaling_audit_pass")

    assert wait_until(lambda: exported() is not None, seconds=15)
    assert exported() == (1 if passed else 0)
