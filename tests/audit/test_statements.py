"""The slowest statements and the order-number row's figures, on a PostgreSQL that preloads
pg_stat_statements: a throwaway cluster (the shared server does not load it), audited by the
command in a process of its own. The run's database plays no part: `backend_independent`."""

import json

import psycopg
import pytest

from tests.migrated_databases import migrate
from tests.observability.conftest import (
    environment_for_test_mode,
    postgres_with_pg_stat_statements,
)
from tests.processes import run_manage

pytestmark = [pytest.mark.system, pytest.mark.backend_independent]

SLOW_STATEMENT = "SELECT pg_sleep(0.25) AS scaling_audit_marker"


@pytest.fixture(scope="module")
def postgres_with_statements():
    with postgres_with_pg_stat_statements("orders") as server:
        environment = environment_for_test_mode(DATABASE_URL=server.url("orders"))
        migrated = migrate(environment)
        assert migrated.returncode == 0, migrated.stderr
        yield server


def audit_findings(server):
    environment = environment_for_test_mode(
        DATABASE_URL=server.url("orders"), LOG_SLOW_QUERY_MS="200"
    )
    completed = run_manage("scaling_audit", "--format", "json", environment=environment)
    assert completed.returncode in (0, 1), completed.stderr
    document = json.loads(completed.stdout)
    return [item for section in document["sections"] for item in section.get("findings", [])]


def test_a_statement_slower_than_log_slow_query_ms_is_listed_as_a_warning(
    postgres_with_statements,
):
    with psycopg.connect(postgres_with_statements.url("orders"), autocommit=True) as connection:
        connection.execute(SLOW_STATEMENT)

    findings = audit_findings(postgres_with_statements)

    slow = [item for item in findings if "scaling_audit_marker" in item["evidence"]]
    assert len(slow) == 1, [item["id"] for item in findings]
    assert slow[0]["severity"] == "warning"
    assert slow[0]["id"].startswith("statement:")


def test_fast_statements_are_listed_as_information(postgres_with_statements):
    findings = audit_findings(postgres_with_statements)

    statements = [item for item in findings if item["id"].startswith("statement:")]
    assert statements
    assert "pg-stat-statements" not in [item["id"] for item in findings]
    assert {item["severity"] for item in statements if "marker" not in item["evidence"]} == {"info"}
