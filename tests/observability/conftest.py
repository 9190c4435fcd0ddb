"""Servers for the health probe tests: throwaway PostgreSQL and Redis, a database that never
answers, and gunicorn running the project against them.

Every server listens on a free local port, lives in a temporary directory and is stopped by a
finalizer (process groups are killed), so tests never touch the shared PostgreSQL or Redis.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
import pytest
import requests
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import override_settings

from apps.observability.health import checks as health
from apps.observability.health import draining
from apps.observability.telemetry import aggregation as telemetry
from tests.migrated_databases import migrate
from tests.processes import (
    free_port,
    port_accepts,
    project_environment,
    run_manage,
    running_gunicorn,
    stop_process_group,
    wait_until,
)


def newest_postgres_bin():
    """Debian installs server binaries per major version: use the newest one present."""
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda initdb: (
            int(initdb.parent.parent.name) if initdb.parent.parent.name.isdigit() else 0
        ),
    )
    return installed[-1].parent if installed else Path("/usr/lib/postgresql/bin")


POSTGRES_BIN = Path(os.environ.get("POSTGRES_BIN") or newest_postgres_bin())
REDIS_SERVER = shutil.which("redis-server")
SERVER_START_SECONDS = 30
SERVER_STOP_SECONDS = 15
METRICS_TOKEN = "metrics-token-for-tests-9b0e"
STAFF_USERNAME = "ops-staff"
STAFF_PASSWORD = "ops-staff-password-8f3k"


@pytest.fixture
def metrics_token():
    """METRICS_TOKEN set for the test (/metrics, /stats and /health-detailed accept it)."""
    with override_settings(METRICS_TOKEN=METRICS_TOKEN):
        yield METRICS_TOKEN


def bearer(token=METRICS_TOKEN):
    return {"Authorization": f"Bearer {token}"}


class ThrowawayPostgres:
    """A PostgreSQL cluster of its own (trust auth, user postgres) on a free port."""

    def __init__(self):
        self.port = free_port()
        # Not under pytest's tmp_path: that is private to root, and initdb refuses to run as
        # root, so the cluster belongs to the postgres user.
        self.directory = Path(tempfile.mkdtemp(prefix="orders-health-postgres-"))
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        self.run_as = None
        if os.geteuid() == 0:
            self.run_as = pwd.getpwnam("postgres")
            os.chown(self.directory, self.run_as.pw_uid, self.run_as.pw_gid)

    def _run(self, *command, timeout=60):
        if self.run_as is not None:
            command = ("runuser", "-u", self.run_as.pw_name, "--", *command)
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=True, cwd=self.directory
        )

    def initialise(self):
        self._run(
            str(POSTGRES_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )

    def start(self):
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(POSTGRES_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            str(SERVER_START_SECONDS),
            "start",
            timeout=SERVER_START_SECONDS + 10,
        )

    def stop(self):
        self._run(
            str(POSTGRES_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-m",
            "fast",
            "-w",
            "-t",
            str(SERVER_STOP_SECONDS),
            "stop",
            timeout=SERVER_STOP_SECONDS + 10,
        )

    def is_running(self):
        return (self.data / "postmaster.pid").exists()

    def url(self, database):
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name):
        with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')

    def remove(self):
        if self.is_running():
            try:
                self.stop()
            except subprocess.SubprocessError:
                self._run(
                    str(POSTGRES_BIN / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-m",
                    "immediate",
                    "stop",
                    timeout=30,
                )
        shutil.rmtree(self.directory, ignore_errors=True)


@contextmanager
def postgres_with_pg_stat_statements(*databases):
    """A started throwaway cluster preloading pg_stat_statements (the shared server does not),
    with `databases` created and the extension created in the first of them; removed after."""
    if not (POSTGRES_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL server binaries not found in {POSTGRES_BIN} (set POSTGRES_BIN)")
    server = ThrowawayPostgres()
    try:
        server.initialise()
        with open(server.data / "postgresql.conf", "a") as configuration:
            configuration.write("\nshared_preload_libraries = 'pg_stat_statements'\n")
        server.start()
        for database in databases:
            server.create_database(database)
        with psycopg.connect(server.url(databases[0]), autocommit=True) as connection:
            connection.execute("CREATE EXTENSION pg_stat_statements")
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="module")
def postgres_server():
    """A running throwaway PostgreSQL with a migrated `orders` database."""
    if not (POSTGRES_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL server binaries not found in {POSTGRES_BIN} (set POSTGRES_BIN)")
    server = ThrowawayPostgres()
    try:
        server.initialise()
        server.start()
        server.create_database("orders")
        environment = environment_for_test_mode(DATABASE_URL=server.url("orders"))
        migrated = migrate(environment)
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        yield server
    finally:
        server.remove()


class ThrowawayRedis:
    def __init__(self, directory):
        self.port = free_port()
        self.directory = directory
        self.process = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert wait_until(lambda: port_accepts(self.port), SERVER_START_SECONDS), "redis down"

    def stop(self):
        if self.process is not None:
            stop_process_group(self.process, SERVER_STOP_SECONDS)


@pytest.fixture
def redis_server(tmp_path):
    if REDIS_SERVER is None:
        pytest.skip("redis-server not found on PATH")
    server = ThrowawayRedis(tmp_path)
    server.start()
    yield server
    server.stop()


class HangingServer:
    """Accepts TCP connections and never sends a byte: a database that hangs."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def close(self):
        self.listener.close()
        for connection in self.accepted:
            connection.close()


@pytest.fixture
def hanging_server():
    server = HangingServer()
    yield server
    server.close()


def environment_for_test_mode(**overrides):
    """The child's environment in DJANGO_ENV=test, with nothing inherited from the caller."""
    return project_environment(DJANGO_ENV="test", **overrides)


@pytest.fixture
def start_gunicorn(tmp_path):
    """Start gunicorn with the given environment (one worker; one thread unless it sets
    GUNICORN_THREADS); returns a GunicornServer. Every server is stopped after the test."""
    with ExitStack() as servers:

        def start(environment, *arguments):
            port = free_port()
            environment = {**environment, "PORT": str(port), "WEB_CONCURRENCY": "1"}
            environment.setdefault("GUNICORN_THREADS", "1")
            return servers.enter_context(
                running_gunicorn(
                    environment,
                    *arguments,
                    "project.wsgi:application",
                    port=port,
                    log_path=tmp_path / f"gunicorn-{port}.log",
                    startup_seconds=SERVER_START_SECONDS,
                    stop_seconds=SERVER_STOP_SECONDS,
                )
            )

        yield start


@pytest.fixture(scope="module")
def sqlite_database_url(tmp_path_factory):
    """A migrated SQLite database file with a staff user, for servers that need no PostgreSQL."""
    path = tmp_path_factory.mktemp("sqlite") / "db.sqlite3"
    url = f"sqlite:///{path}"
    prepare_staff_database(url)
    return url


def prepare_staff_database(database_url):
    """Migrate `database_url` and add the staff superuser STAFF_USERNAME / STAFF_PASSWORD."""
    environment = environment_for_test_mode(
        DATABASE_URL=database_url, DJANGO_SUPERUSER_PASSWORD=STAFF_PASSWORD
    )
    for completed in (
        migrate(environment),
        run_manage(
            "createsuperuser",
            "--noinput",
            "--username",
            STAFF_USERNAME,
            "--email",
            "o@x.io",
            environment=environment,
        ),
    ):
        assert completed.returncode == 0, completed.stdout + completed.stderr


def sign_in_as_staff(base_url, username=STAFF_USERNAME, password=STAFF_PASSWORD):
    """A requests session signed in to the admin of the server at `base_url` as the staff user
    (or another staff member)."""
    session = requests.Session()
    login_url = f"{base_url}/admin/login/"
    session.get(login_url, timeout=10)
    response = session.post(
        login_url,
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
            "next": "/admin/",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text[:500]
    return session


@pytest.fixture(autouse=True)
def _fresh_health_state():
    """Probes keep per-process state (draining flag, migrations seen applied, the checks'
    outcomes logged); reset it."""
    draining._draining.clear()
    health._migrated_aliases.clear()
    health.outcome_log = health.CheckOutcomeLog()
    yield
    draining._draining.clear()
    health._migrated_aliases.clear()


def grant_ops_permission(user):
    """Give `user` observability.view_ops, as the "Ops" group does."""
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="observability", codename="view_ops")
    )
    return user


@pytest.fixture
def staff_client(client):
    """The test client signed in as a staff member who is not a superuser but holds the ops
    permission (the ops pages)."""
    staff = get_user_model().objects.create_user("ops", password="irrelevant", is_staff=True)
    grant_ops_permission(staff)
    client.force_login(staff)
    return client


@pytest.fixture
def empty_telemetry_buffer():
    """The test client's own requests are recorded in this process's telemetry buffer; a test
    that counts requests starts and ends with it empty."""
    telemetry.aggregator.take()
    yield
    telemetry.aggregator.take()
