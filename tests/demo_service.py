"""The service as a developer first meets it: `make run`'s steps (migrate, demo data, an admin
login), gunicorn in development mode, then `manage.py demo_traffic` against it.

Used by the browser tests of tests/browser/test_first_five_minutes.py and by the docs'
screenshot script (docs/screenshots/take_screenshots.py).
"""

import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.processes import project_environment, run_manage, running_gunicorn

ADMIN_USERNAME = "demo-admin"
ADMIN_PASSWORD = "demo-admin-password-7hq4"
# Tables demo_traffic must fill (through the service's flusher).
DEMO_TABLES = ("observability_slowrequest", "observability_errorgroup", "profiling_queryfinding")
# The flusher writes every second here; how long to wait for the rows of a short run.
FLUSH_WAIT_SECONDS = 30


@dataclass
class DemoService:
    url: str
    database_url: str
    traffic_output: str
    log_path: Path

    def count_rows(self, table):
        """Rows of `table` in the service's database, read outside Django (another database)."""
        if self.database_url.startswith("sqlite"):
            with sqlite3.connect(self.database_url.removeprefix("sqlite:///")) as database:
                return database.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        import psycopg

        with psycopg.connect(self.database_url.replace("postgres://", "postgresql://", 1)) as db:
            return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def _manage(environment, *arguments):
    completed = run_manage(*arguments, environment=environment, timeout=300)
    if completed.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(arguments)}:\n{completed.stderr}")
    return completed.stdout


@contextmanager
def running_demo_service(database_url, directory, *, minutes="0.05", rate="25"):
    """Yields a DemoService once demo_traffic has run and its rows are written."""
    directory = Path(directory)
    environment = project_environment(
        DJANGO_ENV="development",
        DATABASE_URL=database_url,
        DJANGO_STATIC_ROOT=directory / "static",
        # Slow enough to be recorded, quick enough for a short run; demo_traffic reads the same.
        LOG_SLOW_REQUEST_MS="300",
        TELEMETRY_FLUSH_SECONDS="1",
        WEB_CONCURRENCY="2",
        GUNICORN_THREADS="4",
        LOG_LEVEL="WARNING",
        DJANGO_SUPERUSER_PASSWORD=ADMIN_PASSWORD,
    )
    _manage(environment, "migrate", "--noinput")
    _manage(
        environment,
        *("seed_demo", "--orgs", "1", "--customers", "40", "--products", "40"),
        *("--orders", "80"),
    )
    _manage(environment, "ensure_superuser", "--username", ADMIN_USERNAME)
    log_path = directory / "gunicorn.log"
    with running_gunicorn(environment, log_path=log_path, startup_seconds=60) as server:
        output = _manage(
            environment,
            *("demo_traffic", "--base-url", server.base_url, "--seed", "7"),
            *("--minutes", minutes, "--rate", rate),
        )
        service = DemoService(server.base_url, database_url, output, log_path)
        deadline = time.monotonic() + FLUSH_WAIT_SECONDS
        while not all(service.count_rows(table) for table in DEMO_TABLES):
            if time.monotonic() > deadline:
                break  # the test that counts the rows says which are missing
            time.sleep(0.5)
        yield service
