"""Prometheus counters of the query inspector, exported by /metrics with the project's others.

Plain prometheus_client counters, as in apps/observability/metrics/registry.py: under gunicorn
(PROMETHEUS_MULTIPROC_DIR set) every process writes its values to files there and /metrics adds
them up, dead processes included.
"""

from prometheus_client import Counter

QUERY_FINDINGS = Counter(
    "orders_query_findings_total",
    "Findings (N+1, duplicate, slow query) reported by sampled requests and inspected commands.",
    ["kind"],
)
FINDINGS_RECORD_FAILURES = Counter(
    "orders_query_findings_record_failures_total",
    "Sampled requests whose findings could not be recorded (the request itself was answered).",
)
FINDINGS_FLUSH_FAILURES = Counter(
    "orders_query_findings_flush_failures_total",
    "Writes of buffered query findings to the database that failed (the buffer is kept).",
)
FINDINGS_DROPPED = Counter(
    "orders_query_findings_dropped_total",
    "Query findings dropped because the buffer was full (database down too long).",
)
# Exported at 0 from the start: alerts take increase() of the slow and N+1 findings.
for kind in ("n_plus_one", "n_plus_one_write", "duplicate", "slow"):
    QUERY_FINDINGS.labels(kind)
