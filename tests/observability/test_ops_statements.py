"""Top statements (/admin/ops/database/statements/) on a PostgreSQL that has pg_stat_statements.

The shared server does not preload the extension and its configuration is never touched, so
these tests start a throwaway cluster (tests/observability/conftest.py) with
shared_preload_libraries = 'pg_stat_statements', and serve the project from it with gunicorn.
Whatever the run's database, they test the same thing: `backend_independent` (CI runs them once).
"""

import psycopg
import pytest

from apps.observability.ops import database_report
from tests.observability.conftest import (
    environment_for_test_mode,
    postgres_with_pg_stat_statements,
    prepare_staff_database,
    sign_in_as_staff,
)

pytestmark = [pytest.mark.system, pytest.mark.backend_independent]

MARKED_STATEMENT = "SELECT pg_sleep(0.02) AS ops_statements_marker"


@pytest.fixture(scope="module")
def postgres_with_statements():
    """A throwaway cluster preloading pg_stat_statements, with a migrated `orders` database
    (extension created, a staff user) and an `orders_plain` one without the extension."""
    with postgres_with_pg_stat_statements("orders", "orders_plain") as server:
        prepare_staff_database(server.url("orders"))
        yield server


def test_the_staff_page_lists_the_statements_that_took_most_time(
    postgres_with_statements, start_gunicorn
):
    with psycopg.connect(postgres_with_statements.url("orders"), autocommit=True) as connection:
        for _ in range(5):
            connection.execute(MARKED_STATEMENT)
    server = start_gunicorn(
        environment_for_test_mode(DATABASE_URL=postgres_with_statements.url("orders"))
    )
    session = sign_in_as_staff(server.base_url)

    response = session.get(f"{server.base_url}/admin/ops/database/statements/", timeout=30)

    assert response.status_code == 200, response.text[:2000]
    assert 'id="statements-table"' in response.text
    assert "AS ops_statements_marker" in response.text
    assert "not enabled" not in response.text


def test_anonymous_visitors_of_the_statements_page_are_sent_to_the_login(
    postgres_with_statements, start_gunicorn
):
    server = start_gunicorn(
        environment_for_test_mode(DATABASE_URL=postgres_with_statements.url("orders"))
    )

    response = server.get("/admin/ops/database/statements/", allow_redirects=False)

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login/")


def test_a_database_without_the_extension_is_told_to_create_it(postgres_with_statements):
    with (
        psycopg.connect(postgres_with_statements.url("orders_plain"), autocommit=True) as plain,
        plain.cursor() as cursor,
    ):
        section = database_report.statements(cursor)

    assert not section.applies
    assert section.message.startswith(
        "pg_stat_statements is loaded, but the extension is not created here."
    )
    assert "CREATE EXTENSION pg_stat_statements;" in section.message


def test_a_statement_share_of_the_total_time_is_computed(postgres_with_statements):
    with psycopg.connect(postgres_with_statements.url("orders"), autocommit=True) as connection:
        connection.execute(MARKED_STATEMENT)
        with connection.cursor() as cursor:
            section = database_report.statements(cursor, limit=5000)

    assert section.has_rows
    shares = [row["share_percent"] for row in section.rows]
    assert sum(shares) == pytest.approx(100, abs=0.01)
    marked = [row for row in section.rows if "ops_statements_marker" in row["query"]]
    assert marked
    assert marked[0]["calls"] >= 1
