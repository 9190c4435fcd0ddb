"""Probes of a real gunicorn server while its dependencies fail.

Each test starts its own servers (PostgreSQL, Redis, a database that hangs) on free ports, so
these tests are `backend_independent` (CI runs them in one pass). The only time
bounds asserted are the probes' functional deadlines: 503 within 2 s, recovery within 5 s.
"""

import http.client
import json
import os
import signal
import threading
import time

import pytest

from tests.observability.conftest import (
    environment_for_test_mode,
    sign_in_as_staff,
    wait_until,
)
from tests.processes import production_environment

pytestmark = [pytest.mark.system, pytest.mark.backend_independent]

KUBELET_HOST = "10.1.2.3:8000"
PUBLIC_HOST = "orders.example.com"
METRICS_TOKEN = "metrics-token-for-tests-7c1e"
NOT_READY_WITHIN_SECONDS = 2.0
READY_AGAIN_WITHIN_SECONDS = 5.0


def timed_get(server, path, **kwargs):
    started = time.monotonic()
    response = server.get(path, **kwargs)
    return response, time.monotonic() - started


def ready_status(server):
    return server.get("/ready", host=KUBELET_HOST).status_code


def detailed(server):
    response = server.get(
        "/health-detailed", host=PUBLIC_HOST, headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    assert response.status_code in {200, 503}, response.text
    return response.json()


@pytest.fixture
def postgres_app(postgres_server, start_gunicorn):
    """gunicorn in production mode on the throwaway PostgreSQL; the server is started again
    after the test whatever the test did to it."""

    def start(**overrides):
        return start_gunicorn(
            production_environment(
                DATABASE_URL=postgres_server.url("orders"), METRICS_TOKEN=METRICS_TOKEN, **overrides
            )
        )

    yield start
    if not postgres_server.is_running():
        postgres_server.start()


def test_ready_answers_503_within_2_seconds_when_postgres_stops_while_health_stays_200(
    postgres_server, postgres_app
):
    server = postgres_app()
    assert ready_status(server) == 200

    postgres_server.stop()
    response, seconds = timed_get(server, "/ready", host=KUBELET_HOST)

    assert response.status_code == 503
    assert seconds < NOT_READY_WITHIN_SECONDS
    assert response.json()["checks"]["database"]["status"] == "failing"
    assert server.get("/health", host=KUBELET_HOST).status_code == 200


def test_ready_recovers_within_5_seconds_when_postgres_comes_back_without_a_restart(
    postgres_server, postgres_app
):
    server = postgres_app()
    worker_pid = server.get("/health").json()["pid"]
    postgres_server.stop()
    assert ready_status(server) == 503

    postgres_server.start()

    assert wait_until(lambda: ready_status(server) == 200, READY_AGAIN_WITHIN_SECONDS)
    assert server.get("/health").json()["pid"] == worker_pid


def test_a_thousand_ready_probes_stay_200_with_a_pool_of_four(postgres_app):
    server = postgres_app(DB_POOL_MAX_SIZE="4")

    for probe in range(1, 1001):
        status = ready_status(server)
        assert status == 200, f"probe {probe} answered {status}"
    pool = detailed(server)["checks"]["database_pool"]["details"]["statistics"]
    assert pool["pool_max"] == 4
    assert pool["requests_waiting"] == 0


def test_replica_state_is_read_on_postgres(postgres_server, postgres_app):
    server = postgres_app(DATABASE_REPLICA_URLS=postgres_server.url("orders"))

    replica = detailed(server)["checks"]["replica_1"]

    assert replica["status"] == "ok"
    assert replica["details"]["state"] == "in_rotation"


def test_ready_answers_503_within_2_seconds_when_the_database_never_answers(
    hanging_server, start_gunicorn
):
    server = start_gunicorn(
        production_environment(
            DATABASE_URL=f"postgres://postgres@127.0.0.1:{hanging_server.port}/x"
        )
    )

    first, first_seconds = timed_get(server, "/ready", host=KUBELET_HOST)
    # The first check is still stuck in the driver; the next probe must not wait for it either.
    second, second_seconds = timed_get(server, "/ready", host=KUBELET_HOST)

    assert (first.status_code, second.status_code) == (503, 503)
    assert first_seconds < NOT_READY_WITHIN_SECONDS
    assert second_seconds < NOT_READY_WITHIN_SECONDS
    assert "timed out" in first.json()["checks"]["database"]["message"]


def test_probes_answer_the_pod_ip_as_host_over_plain_http_in_production(
    sqlite_database_url, start_gunicorn
):
    server = start_gunicorn(production_environment(DATABASE_URL=sqlite_database_url))

    health = server.get("/health", host=KUBELET_HOST, allow_redirects=False)
    ready = server.get("/ready", host=KUBELET_HOST, allow_redirects=False)
    page = server.get("/admin/login/", host=KUBELET_HOST, allow_redirects=False)

    assert (health.status_code, ready.status_code) == (200, 200)
    # The same Host is refused everywhere else: the probes are exempt, the hosts are not open.
    assert page.status_code == 400


def test_a_replica_that_is_down_degrades_but_keeps_ready_200(
    sqlite_database_url, hanging_server, start_gunicorn
):
    server = start_gunicorn(
        production_environment(
            DATABASE_URL=sqlite_database_url,
            DATABASE_REPLICA_URLS=f"postgres://postgres@127.0.0.1:{hanging_server.port}/orders",
        )
    )

    response = server.get("/ready", host=KUBELET_HOST)

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["replica_1"]["status"] == "degraded"


@pytest.fixture
def redis_app(sqlite_database_url, redis_server, start_gunicorn):
    # DJANGO_ENV=test rather than production: session cookies are not "Secure", so a plain-HTTP
    # test client can sign in; how the cache fails does not depend on DJANGO_ENV.
    return start_gunicorn(
        environment_for_test_mode(DATABASE_URL=sqlite_database_url, REDIS_URL=redis_server.url)
    )


def test_ready_stays_200_with_the_cache_degraded_when_redis_is_down(redis_server, redis_app):
    assert redis_app.get("/ready").json()["checks"]["cache"]["status"] == "ok"

    redis_server.stop()
    response = redis_app.get("/ready")

    assert response.status_code == 200
    assert response.json()["checks"]["cache"]["status"] == "degraded"


def test_the_admin_login_page_is_served_when_redis_is_down(redis_server, redis_app):
    redis_server.stop()

    assert redis_app.get("/admin/login/").status_code == 200


def test_a_staff_session_keeps_working_when_redis_goes_down(redis_server, redis_app):
    session = sign_in_as_staff(redis_app.base_url)

    redis_server.stop()
    response = session.get(f"{redis_app.base_url}/admin/", allow_redirects=False, timeout=10)

    assert response.status_code == 200


def keep_alive_get(connection, path):
    connection.request("GET", path)
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def test_a_worker_answers_ready_503_after_sigterm_while_a_request_is_in_flight(
    sqlite_database_url, hanging_server, start_gunicorn
):
    # Two threads: one busy with a slow request (/ready waiting on a replica that hangs), one
    # free to answer a probe on a kept-alive connection after SIGTERM.
    server = start_gunicorn(
        environment_for_test_mode(
            DATABASE_URL=sqlite_database_url,
            DATABASE_REPLICA_URLS=f"postgres://postgres@127.0.0.1:{hanging_server.port}/orders",
            GUNICORN_THREADS="2",
        )
    )
    port = int(server.base_url.rsplit(":", 1)[1])
    probe = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    status, body = keep_alive_get(probe, "/health")
    assert status == 200
    worker_pid = body["pid"]
    hanging_server.accepted.clear()
    slow = {}
    slow_request = threading.Thread(
        target=lambda: slow.update(response=server.get("/ready")), daemon=True
    )
    slow_request.start()
    assert wait_until(lambda: hanging_server.accepted, 10), "the slow request never started"

    os.kill(worker_pid, signal.SIGTERM)
    time.sleep(0.2)  # let the worker's main thread run its signal handler
    status, body = keep_alive_get(probe, "/ready")
    slow_request.join(timeout=10)

    assert (status, body["status"]) == (503, "draining")
    assert slow["response"].status_code == 200
