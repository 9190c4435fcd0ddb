"""orders_scaling_audit_pass and the time of that run, for Prometheus.

The command runs in its own process (a Kubernetes Job, a compose one-off), so its result reaches
the web processes through the database: each process's flusher reads the newest run at most once
a minute and sets the gauges, which multiprocess mode writes to its files; /metrics shows the
value of the live processes, which all read the same row.

Each series carries the gate's `fail_on`: labelled series exist only once set, so no process
exports a 0 ("failed") before any audit has run.
"""

import time

from prometheus_client import Gauge

from apps.audit.selectors import last_run

READ_INTERVAL_SECONDS = 60

AUDIT_PASS = Gauge(
    "orders_scaling_audit_pass",
    "1 when the last scaling audit (manage.py scaling_audit) passed its gate, 0 when it failed.",
    ["fail_on"],
    multiprocess_mode="livemostrecent",
)
AUDIT_TIMESTAMP = Gauge(
    "orders_scaling_audit_timestamp_seconds",
    "When the last scaling audit ran (Unix time).",
    ["fail_on"],
    multiprocess_mode="livemostrecent",
)
AUDIT_FINDINGS = Gauge(
    "orders_scaling_audit_findings",
    "Findings of the last scaling audit, by severity (critical, warning).",
    ["severity"],
    multiprocess_mode="livemostrecent",
)

_last_read = None


def export(run):
    AUDIT_PASS.labels(run.fail_on).set(1 if run.passed else 0)
    AUDIT_TIMESTAMP.labels(run.fail_on).set(run.started_at.timestamp())
    AUDIT_FINDINGS.labels("critical").set(run.critical)
    AUDIT_FINDINGS.labels("warning").set(run.warnings)


def export_last_run():
    run = last_run()
    if run is not None:
        export(run)
    return run


def export_last_run_job(final):
    """The flusher's job: follow the newest run, reading it at most once a minute."""
    global _last_read
    now = time.monotonic()
    if final or (_last_read is not None and now - _last_read < READ_INTERVAL_SECONDS):
        return
    _last_read = now
    export_last_run()
