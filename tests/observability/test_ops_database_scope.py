"""The ops database page shows the service's own database, not the other databases of its server.

A statement is left running on a connection of the test's own, in the test database or in the
server's `postgres` maintenance database (a read-only pg_sleep: nothing there is changed).
"""

import contextlib
import threading

import psycopg
import pytest
from django.db import connection

from tests.observability.test_ops_database import database_page, on_postgresql, section
from tests.processes import wait_until

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.no_nplusone,
    pytest.mark.usefixtures("empty_telemetry_buffer"),
    on_postgresql,
]


@contextlib.contextmanager
def statement_running_in(database, marker):
    """`SELECT pg_sleep(5) AS <marker>` running in `database` until the block ends."""
    parameters = {
        "host": connection.settings_dict["HOST"] or "127.0.0.1",
        "port": connection.settings_dict["PORT"] or 5432,
        "user": connection.settings_dict["USER"],
    }
    sleeper = psycopg.connect(dbname=database, autocommit=True, **parameters)

    def sleep():
        with contextlib.suppress(psycopg.errors.QueryCanceled):  # cancelled once seen
            sleeper.execute(f"SELECT pg_sleep(5) AS {marker}")

    thread = threading.Thread(target=sleep, daemon=True)
    thread.start()
    watcher = psycopg.connect(dbname=database, autocommit=True, **parameters)
    try:

        def running_long_enough():
            return watcher.execute(
                "SELECT 1 FROM pg_stat_activity WHERE query LIKE %s AND datname = %s"
                " AND now() - query_start > interval '200 milliseconds'",
                [f"%AS {marker}", database],
            ).fetchone()

        assert wait_until(running_long_enough, 10)
        yield
    finally:
        watcher.close()
        sleeper.cancel_safe()
        thread.join(10)
        sleeper.close()


def test_a_long_running_statement_of_another_database_is_not_listed(staff_client, settings):
    settings.LOG_SLOW_REQUEST_MS = 100

    with (
        statement_running_in(connection.settings_dict["NAME"], "ops_scope_own"),
        statement_running_in("postgres", "ops_scope_other"),
    ):
        html = section(database_page(staff_client), "long-running")

    assert "AS ops_scope_own" in html
    assert "AS ops_scope_other" not in html
