"""The API throttle under the real deployment: several gunicorn processes sharing Redis, many
clients of one key at once.

The server runs on the database of the pass (a SQLite file of its own, or a PostgreSQL database
created on the pass's server and dropped afterwards) and on the pass's Redis, or a private one
when the pass has none.
"""

import collections
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.conf import settings
from django.db import connection

from tests.migrated_databases import migrate
from tests.observability.conftest import REDIS_SERVER, ThrowawayRedis
from tests.processes import (
    fresh_postgres_database,
    project_environment,
    run_manage,
    running_gunicorn,
)

pytestmark = pytest.mark.system

CLIENTS = 16
REQUESTS_PER_CLIENT = 5
LIMIT = 20


@pytest.fixture
def server_database_url(tmp_path):
    if connection.vendor != "postgresql":
        yield f"sqlite:///{tmp_path / 'throttle.sqlite3'}"
        return
    name = f"orders_throttle_gunicorn_{os.getpid()}"
    with fresh_postgres_database(connection.settings_dict, name) as url:
        yield url


@pytest.fixture
def server_redis_url(tmp_path):
    if settings.REDIS_URL:
        yield settings.REDIS_URL
        return
    if REDIS_SERVER is None:
        pytest.skip("no REDIS_URL and no redis-server on PATH")
    server = ThrowawayRedis(tmp_path)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def api_key_for_new_organization(environment):
    for completed in (
        migrate(environment),
        run_manage(
            "create_organization", "throttled", "--name", "Throttled", environment=environment
        ),
    ):
        assert completed.returncode == 0, completed.stdout + completed.stderr
    completed = run_manage(
        "create_api_key", "throttled", "--name", "burst", environment=environment
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout.strip().splitlines()[-1]


def send_burst(base_url, key):
    """CLIENTS clients at once, each sending REQUESTS_PER_CLIENT requests on its own connection;
    returns every response."""

    def client(_):
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {key}"
            return [
                session.get(f"{base_url}/api/v1/products/", timeout=30)
                for _ in range(REQUESTS_PER_CLIENT)
            ]

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        return [
            response for responses in pool.map(client, range(CLIENTS)) for response in responses
        ]


def test_exactly_the_rate_passes_a_concurrent_burst_across_processes_and_every_429_says_when(
    server_database_url, server_redis_url, tmp_path
):
    environment = project_environment(
        DJANGO_ENV="test",
        DATABASE_URL=server_database_url,
        REDIS_URL=server_redis_url,
        # The test process's own keys in the Redis it was given (tests/own_cache.py).
        REDIS_KEY_PREFIX=settings.REDIS_KEY_PREFIX,
        API_THROTTLE_RATE=f"{LIMIT}/minute",
        WEB_CONCURRENCY=4,
        GUNICORN_THREADS=4,
    )
    key = api_key_for_new_organization(environment)

    with running_gunicorn(
        environment, log_path=tmp_path / "gunicorn.log", startup_seconds=60, request_timeout=30
    ) as server:
        responses = send_burst(server.base_url, key)

    statuses = collections.Counter(response.status_code for response in responses)
    assert statuses == {200: LIMIT, 429: CLIENTS * REQUESTS_PER_CLIENT - LIMIT}
    refusals = [response for response in responses if response.status_code == 429]
    assert all(1 <= int(response.headers["Retry-After"]) <= 60 for response in refusals)
