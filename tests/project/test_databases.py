"""The embedded SQLite database and the PostgreSQL pool behave as settings promise."""

import sqlite3

import pytest
from django.conf import settings
from django.db import connection
from django.db.utils import ConnectionHandler
from psycopg_pool import PoolTimeout

from apps.common.replicas import read_replica_alias
from project import settings as project_settings
from project.db_routers import PrimaryReplicaRouter
from project.environment import parse_database_url

on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="runs in the PostgreSQL pass (DATABASE_URL set)"
)


@pytest.fixture
def sqlite_file_connection(tmp_path, django_db_blocker):
    """A connection to a fresh SQLite file, configured exactly as the default database is."""
    path = tmp_path / "orders.sqlite3"
    config = project_settings.database_settings(
        parse_database_url("DATABASE_URL", f"sqlite:///{path}")
    )
    sqlite_connection = ConnectionHandler({"default": config})["default"]
    with django_db_blocker.unblock():
        yield sqlite_connection, path
        sqlite_connection.close()


def pragma(sqlite_connection, name):
    with sqlite_connection.cursor() as cursor:
        cursor.execute(f"PRAGMA {name}")
        return cursor.fetchone()[0]


def test_sqlite_uses_write_ahead_logging(sqlite_file_connection):
    sqlite_connection, _ = sqlite_file_connection
    assert pragma(sqlite_connection, "journal_mode") == "wal"


def test_sqlite_waits_for_locks_instead_of_failing(sqlite_file_connection):
    sqlite_connection, _ = sqlite_file_connection
    assert pragma(sqlite_connection, "busy_timeout") == settings.SQLITE_BUSY_TIMEOUT_MS


def test_sqlite_enforces_foreign_keys(sqlite_file_connection):
    sqlite_connection, _ = sqlite_file_connection
    assert pragma(sqlite_connection, "foreign_keys") == 1


def test_sqlite_transactions_take_the_write_lock_at_begin(sqlite_file_connection):
    sqlite_connection, path = sqlite_file_connection
    sqlite_connection.ensure_connection()
    other_process = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        # What transaction.atomic() does on entry; no statement runs inside the transaction.
        sqlite_connection.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other_process.execute("BEGIN IMMEDIATE")
    finally:
        sqlite_connection.rollback()
        other_process.close()


def test_primary_serves_ordinary_reads_and_writes():
    router = PrimaryReplicaRouter()
    assert router.db_for_read(None) == "default"
    assert router.db_for_write(None) == "default"


def test_migrations_run_only_on_the_primary():
    router = PrimaryReplicaRouter()
    assert router.allow_migrate("default", "orders") is True
    assert router.allow_migrate("replica_1", "orders") is False


def test_heavy_reads_fall_back_to_the_primary_without_replicas():
    assert read_replica_alias() == "default"


@on_postgres
@pytest.mark.django_db
def test_postgres_connections_come_from_the_pool():
    connection.ensure_connection()
    assert connection.pool is not None
    assert connection.pool.max_size == settings.DB_POOL_MAX_SIZE


@on_postgres
@pytest.mark.django_db
def test_postgres_pool_never_exceeds_its_maximum_size():
    pool = connection.pool
    borrowed = []
    try:
        while len(borrowed) < pool.max_size - 1:  # this test's own connection holds one
            borrowed.append(pool.getconn(timeout=5))
        with pytest.raises(PoolTimeout):
            pool.getconn(timeout=0.5)
        assert pool.get_stats()["pool_size"] <= pool.max_size
    finally:
        for pooled in borrowed:
            pool.putconn(pooled)


@on_postgres
@pytest.mark.django_db
def test_postgres_sessions_carry_the_statement_timeout():
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        (timeout,) = cursor.fetchone()
    assert timeout == f"{settings.DB_STATEMENT_TIMEOUT_MS // 1000}s"
