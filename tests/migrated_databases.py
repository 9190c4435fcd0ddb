"""Migrated databases for the servers the tests start, at the cost of a copy.

`manage.py migrate` on an empty database costs seconds of CPU (every migration of every app is
loaded and its state rendered), and a test run prepares a database for most servers it starts.
So each test process migrates one database of each kind for real, keeps a copy, and gives every
later empty database that copy: SQLite's online backup of the file, or for PostgreSQL pg_dump's
script of it loaded by psql (the same server or a throwaway one). The copy holds everything
migrate left: tables, migration records, content types, permissions, the "Ops" group.

Tests of what migrate does run it (tests.processes.run_manage); the servers of `make run` and
`make stack` that the tests reproduce do too.
"""

import atexit
import functools
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from tests.processes import run_manage

SQLITE_PREFIX = "sqlite:///"
# "sqlite" or "postgres" -> this process's copy of its first migrated database of that kind.
_templates = {}


def migrate(environment):
    """The effect of `manage.py migrate --noinput` on environment["DATABASE_URL"], run in a fresh
    process or copied from this process's first one; returns a CompletedProcess."""
    url = environment["DATABASE_URL"]
    kind = "sqlite" if url.startswith(SQLITE_PREFIX) else "postgres"
    copy, save = (_copy_sqlite, _save_sqlite) if kind == "sqlite" else (_copy_pg, _save_pg)
    if kind in _templates and _is_empty(kind, url):
        copy(_templates[kind], url)
        return subprocess.CompletedProcess(["migrate (copied)"], 0, "", "")
    migrated = run_manage("migrate", "--noinput", environment=environment)
    if migrated.returncode == 0 and kind not in _templates:
        _templates[kind] = save(url, _directory() / f"template.{kind}")
    return migrated


@functools.cache
def _directory():
    directory = Path(tempfile.mkdtemp(prefix="orders-migrated-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory


def _is_empty(kind, url):
    if kind == "sqlite":
        path = Path(url[len(SQLITE_PREFIX) :])
        return not path.exists() or path.stat().st_size == 0
    import psycopg

    with psycopg.connect(url) as connection:
        tables = connection.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()[0]
    return tables == 0


def _save_sqlite(url, template):
    _sqlite_backup(Path(url[len(SQLITE_PREFIX) :]), template)
    return template


def _copy_sqlite(template, url):
    _sqlite_backup(template, Path(url[len(SQLITE_PREFIX) :]))


def _sqlite_backup(source, target):
    # The backup API, not a file copy: the migrated database is in WAL mode (project/settings.py).
    with sqlite3.connect(source) as reading, sqlite3.connect(target) as writing:
        reading.backup(writing)
    reading.close()
    writing.close()


def _save_pg(url, template):
    subprocess.run(
        ["pg_dump", "--no-owner", "--no-privileges", "--file", str(template), _libpq(url)],
        check=True,
        capture_output=True,
    )
    return template


def _copy_pg(template, url):
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--file", str(template), _libpq(url)],
        check=True,
        capture_output=True,
    )


def _libpq(url):
    """A DATABASE_URL as a libpq connection URI (postgres:// and postgresql:// alike)."""
    parts = urlsplit(url)
    return parts._replace(scheme="postgresql").geturl()
