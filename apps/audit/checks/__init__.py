"""The audit's checks: each reads the live deployment and returns its findings.

A check is a function of the audit's `Scope` returning a list of `Finding`s; `CHECKS` says which
section of the report its findings belong to, in the order they are run.
"""

from apps.audit.checks import (
    configuration,
    connections,
    monitoring,
    queries,
    readiness,
    scaling,
    schema,
    sharding,
    traffic,
)
from apps.audit.report import GAPS, MONITORING, PERFORMANCE, SCALING

CHECKS = (
    (PERFORMANCE, connections.pool_waits),
    (PERFORMANCE, schema.foreign_key_indexes),
    (PERFORMANCE, schema.sequential_scans),
    (PERFORMANCE, queries.query_findings),
    (PERFORMANCE, queries.slowest_statements),
    (PERFORMANCE, traffic.request_health),
    (PERFORMANCE, connections.hot_rows),
    (MONITORING, readiness.readiness),
    (MONITORING, monitoring.logging_and_monitoring),
    (SCALING, connections.connection_budget),
    (SCALING, scaling.scaling),
    (SCALING, sharding.sharding_readiness),
    (GAPS, configuration.settings_checks),
    (GAPS, configuration.retention),
)
