"""The ops database page (/admin/ops/database/) on the database the suite runs on.

PostgreSQL sections are checked on PostgreSQL, SQLite's on SQLite; each test says which. The
statistics a section reads are made by the test itself (a table with an unindexed foreign key, a
statement left running), inside the test's transaction or on a connection of its own.
"""

import contextlib
import datetime as dt
import threading

import psycopg
import pytest
from django.db import connection

from apps.observability.ops.database_report import UNUSED_INDEX_MIN_TABLE_ROWS
from apps.observability.telemetry.models import RequestMinute
from tests.processes import wait_until

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.no_nplusone,
    pytest.mark.usefixtures("empty_telemetry_buffer"),
]

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="a PostgreSQL section (set DATABASE_URL)"
)
on_sqlite = pytest.mark.skipif(connection.vendor != "sqlite", reason="a SQLite section")
MINUTE = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)


def database_page(client, path="/admin/ops/database/"):
    response = client.get(path)
    assert response.status_code == 200, response.content[:2000]
    return response.content.decode()


def section(html, anchor):
    """The HTML from one section's heading to the next heading."""
    start = html.index(f'<h2 id="{anchor}">')
    end = html.find("<h2 ", start + 1)
    return html[start : end if end != -1 else None]


def create_unindexed_foreign_key():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE ops_test_parent (id integer PRIMARY KEY)")
        cursor.execute(
            "CREATE TABLE ops_test_child (id integer PRIMARY KEY,"
            " parent_id integer REFERENCES ops_test_parent (id))"
        )


def test_the_page_draws_the_largest_tables(staff_client):
    RequestMinute.objects.bulk_create(
        RequestMinute(minute=MINUTE, route=f"/route-{number}/", method="GET", requests=1)
        for number in range(3000)
    )

    html = database_page(staff_client)

    assert 'aria-label="Largest tables, total size with indexes"' in html
    assert "<title>observability_requestminute: " in html


def test_the_projects_own_foreign_keys_all_have_an_index(staff_client):
    html = section(database_page(staff_client), "unindexed-foreign-keys")

    assert "Every foreign key has an index starting with its columns." in html


def test_a_foreign_key_without_an_index_is_listed(staff_client):
    create_unindexed_foreign_key()

    html = section(database_page(staff_client), "unindexed-foreign-keys")

    assert "<td>ops_test_child</td><td><code>parent_id</code></td><td>ops_test_parent</td>" in html


def test_a_foreign_key_covered_by_an_index_is_not_listed(staff_client):
    create_unindexed_foreign_key()
    with connection.cursor() as cursor:
        cursor.execute("CREATE INDEX ops_test_child_parent ON ops_test_child (parent_id, id)")

    html = section(database_page(staff_client), "unindexed-foreign-keys")

    assert "ops_test_child" not in html


@on_sqlite
def test_on_sqlite_the_page_shows_the_file_and_its_journal_mode(staff_client):
    html = section(database_page(staff_client), "file")

    assert '<th scope="row">journal mode</th>' in html


@on_sqlite
@pytest.mark.parametrize(
    ("anchor", "message"),
    [
        ("connections", "SQLite has no server"),
        ("long-running", "SQLite does not expose running statements."),
        ("hit-ratio", "SQLite keeps no buffer cache statistics."),
        ("unused-indexes", "SQLite does not count index scans."),
        ("replicas", "Read replicas need PostgreSQL (DATABASE_REPLICA_URLS)."),
    ],
)
def test_on_sqlite_sections_that_do_not_apply_say_why(staff_client, anchor, message):
    html = section(database_page(staff_client), anchor)

    assert message in html
    assert "Run the service on PostgreSQL to see it." in html


@on_sqlite
def test_on_sqlite_top_statements_explain_how_to_get_them(staff_client):
    html = database_page(staff_client, "/admin/ops/database/statements/")

    assert "Top statements come from PostgreSQL&#x27;s pg_stat_statements" in html
    assert "shared_preload_libraries" in html


@on_postgresql
def test_connections_are_counted_by_state(staff_client):
    html = section(database_page(staff_client), "connections")

    assert "<tr><td>active</td>" in html  # at least the page's own query
    assert "client connections of max_connections = " in html


@on_postgresql
def test_a_statement_running_longer_than_a_slow_request_is_listed(staff_client, settings):
    settings.LOG_SLOW_REQUEST_MS = 100
    database = connection.settings_dict["NAME"]
    sleeper = psycopg.connect(
        host=connection.settings_dict["HOST"] or "127.0.0.1",
        port=connection.settings_dict["PORT"] or 5432,
        user=connection.settings_dict["USER"],
        dbname=database,
        autocommit=True,
    )

    def sleep():
        with contextlib.suppress(psycopg.errors.QueryCanceled):  # cancelled once seen
            sleeper.execute("SELECT pg_sleep(5) AS ops_test_sleeper")

    thread = threading.Thread(target=sleep, daemon=True)
    thread.start()
    watcher = psycopg.connect(sleeper.info.dsn, autocommit=True)
    try:

        def running_long_enough():
            return watcher.execute(
                # This database's sleeper only: another suite on the server may run this test too.
                "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(5)%%'"
                " AND datname = current_database()"
                " AND now() - query_start > interval '200 milliseconds'"
            ).fetchone()

        assert wait_until(running_long_enough, 10)
        html = section(database_page(staff_client), "long-running")
    finally:
        watcher.close()
        sleeper.cancel_safe()
        thread.join(10)
        sleeper.close()

    assert "SELECT pg_sleep(5) AS ops_test_sleeper" in html
    assert "Running for more than 0.1 s (LOG_SLOW_REQUEST_MS)." in html


@on_postgresql
def test_the_buffer_cache_hit_ratio_is_shown(staff_client):
    html = section(database_page(staff_client), "hit-ratio")

    assert "<td>database (all reads)</td>" in html
    assert "<td>indexes</td>" in html


@on_postgresql
def test_an_index_never_scanned_is_listed_as_unused(staff_client):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE ops_test_lonely (id integer PRIMARY KEY, name text)")
        cursor.execute("CREATE INDEX ops_test_lonely_name ON ops_test_lonely (name)")
        cursor.execute(
            "INSERT INTO ops_test_lonely SELECT n, 'name ' || n FROM generate_series(1, %s) n",
            [UNUSED_INDEX_MIN_TABLE_ROWS],
        )
        cursor.execute("ANALYZE ops_test_lonely")

    html = section(database_page(staff_client), "unused-indexes")

    assert "<td>ops_test_lonely_name</td><td>ops_test_lonely</td>" in html
    assert "ops_test_lonely_pkey" not in html  # unique: it enforces something even unscanned


@on_postgresql
def test_an_unscanned_index_of_a_small_table_is_not_called_unused(staff_client):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE ops_test_small (id integer PRIMARY KEY, name text)")
        cursor.execute("CREATE INDEX ops_test_small_name ON ops_test_small (name)")
        cursor.execute("INSERT INTO ops_test_small VALUES (1, 'one')")
        cursor.execute("ANALYZE ops_test_small")

    html = section(database_page(staff_client), "unused-indexes")

    assert "ops_test_small_name" not in html
    assert "left out" in html


@on_postgresql
def test_without_replicas_the_page_says_how_to_add_them(staff_client):
    html = section(database_page(staff_client), "replicas")

    assert "No read replica is configured (DATABASE_REPLICA_URLS)" in html


@on_postgresql
def test_without_pg_stat_statements_the_page_says_how_to_enable_it(staff_client):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('shared_preload_libraries')")
        if "pg_stat_statements" in cursor.fetchone()[0]:
            pytest.skip("this server preloads pg_stat_statements")

    html = database_page(staff_client, "/admin/ops/database/statements/")

    assert "pg_stat_statements is not enabled on this server." in html
    assert "shared_preload_libraries = &#x27;pg_stat_statements&#x27;" in html
    assert "CREATE EXTENSION pg_stat_statements;" in html
    assert "statements of this database that took the most time" not in html
