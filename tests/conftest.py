import atexit
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections

from apps.common import flusher
from tests.own_cache import clear_own_cache, use_own_key_prefix

# The `no_nplusone` marker: the test fails when its body runs an N+1 query pattern.
pytest_plugins = ["apps.profiling.pytest_plugin"]


def pytest_configure(config):
    # WhiteNoise scans STATIC_ROOT when the first request loads the middleware; tests run without
    # collectstatic, so give it an existing (empty) directory rather than a warning per test.
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    # In test mode WhiteNoise serves the apps' static files through the finders. Without
    # autorefresh, every new test client (one per test) rescans all of them when it loads the
    # middleware, ~7 s of CPU per run; with it, a file is looked up when it is requested.
    settings.WHITENOISE_AUTOREFRESH = True
    if settings.REDIS_URL:
        use_own_key_prefix(os.environ.get("PYTEST_XDIST_WORKER", "main"))


@pytest.fixture(scope="session", autouse=True)
def own_cache_keys_deleted_at_the_end():
    """Whatever the tests left under their key prefix goes when the run ends; nothing else does."""
    yield
    clear_own_cache()


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config, items):
    """Once pytest-django has put the database tests first and the transactional ones next, the
    tests that start processes (or are marked long_running) move to the front of their group:
    those that use no database to the very front, the others to the front of theirs.

    `make test` runs the modules in parallel (pytest-xdist, --dist loadfile: a module's tests run
    on one worker, which sets its module-wide fixture up once: a private PostgreSQL, a migrated
    SQLite file, a gunicorn), handing them out in this order. Those modules are the slowest:
    started first, none of them can prolong the end of the run. pytest-django's order of database
    tests, then transactional ones, holds: only tests that use no database move across it.
    """
    result = yield
    items[:] = sorted(items, key=_start_order)  # stable: pytest-django's order within a rank
    return result


def _start_order(item):
    slow = any(item.get_closest_marker(name) for name in ("system", "long_running"))
    use = _database_use(item)
    if use is None:
        return 0 if slow else 3
    if use == "transactional":
        return 1.5 if slow else 2
    return 0.5 if slow else 1


def _database_use(item):
    """None, "database" or "transactional", as pytest-django tells them apart."""
    fixtures = set(item.fixturenames)
    marker = item.get_closest_marker("django_db")
    transactional = bool(
        fixtures & {"transactional_db", "live_server", "django_db_reset_sequences"}
    ) or bool(marker and (marker.kwargs.get("transaction") or marker.kwargs.get("reset_sequences")))
    if transactional:
        return "transactional"
    if marker or "db" in fixtures:
        return "database"
    return None


@pytest.fixture(scope="module", autouse=True)
def database_connections_closed_after_the_module():
    """A module starts with new database connections, whichever modules ran before it.

    With xdist, which modules precede one on its worker varies from run to run. A connection left
    open carries state over: after a test changes TIME_ZONE, Django closes the PostgreSQL pool
    and opens a new one while the open connection still comes from the old pool, so a test that
    counts the pool's connections would count one too few.
    """
    yield
    connections.close_all()


@pytest.fixture(scope="session", autouse=True)
def no_flush_at_exit():
    """The test process never flushes its buffered request statistics when it exits.

    test_flusher.py starts the flusher, which registers its atexit flush; every request a later
    test sends marks the process as one that served requests. At exit that flush would write to
    the test database, dropped by then: on PostgreSQL it waits DB_POOL_TIMEOUT (10 s) for a
    connection, and xdist kills a worker that takes 10 s to exit, after waiting for it.
    """
    yield
    atexit.unregister(flusher.flush_at_exit)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """SQLite's test database is a file of this test process, as the service runs it (WAL).

    Not Django's default, a shared-cache database in memory: there a connection reading a table
    that another thread's connection is writing fails at once ("database table is locked"), which
    tests with a background thread (the telemetry flusher, the live server) hit under load. And
    pytest-django's per-xdist-worker name for it, test_/abs/path/db.sqlite3_gw0, cannot be
    opened. (PostgreSQL keeps pytest-django's: test_orders_gw0, ...)
    """
    for alias, database in settings.DATABASES.items():
        test = database.setdefault("TEST", {})
        if database["ENGINE"].endswith(".sqlite3") and not test.get("MIRROR"):
            test["NAME"] = str(tmp_path_factory.mktemp("sqlite") / f"test_{alias}.sqlite3")


@pytest.fixture
def superuser_client(client):
    """The test client signed in as a superuser, who may do anything in the admin."""
    superuser = get_user_model().objects.create_superuser("root", "root@example.com", "x")
    client.force_login(superuser)
    return client
