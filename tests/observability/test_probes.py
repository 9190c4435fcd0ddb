"""/health and /ready in this process, through the project's middleware."""

import pytest
from django.test import Client, override_settings
from health_check.exceptions import ServiceUnavailable

from apps.observability import draining, health

DUMMY_CACHE = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
KUBELET_HOST = "10.1.2.3:8000"


def fail_database_check(monkeypatch):
    def run(self):
        raise ServiceUnavailable("connection refused")

    monkeypatch.setattr(health.DatabaseCheck, "run", run)


def test_liveness_answers_200_without_touching_the_database(client):
    # No django_db mark: a database query here would raise.
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.django_db
def test_readiness_names_each_check_with_its_status_message_and_time(client):
    response = client.get("/ready")

    assert response.status_code == 200
    checks = response.json()["checks"]
    assert {"database", "migrations", "database_pool", "cache"} <= set(checks)
    for check in checks.values():
        assert set(check) == {"status", "message", "time_ms"}
        assert check["status"] == health.OK


@pytest.mark.django_db
def test_readiness_is_never_cached(client):
    response = client.get("/ready")

    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_readiness_answers_503_naming_the_failing_check(client, monkeypatch):
    fail_database_check(monkeypatch)

    response = client.get("/ready")

    assert response.status_code == 503
    assert response.json()["status"] == health.FAILING
    assert response.json()["checks"]["database"] == {
        "status": health.FAILING,
        "message": "connection refused",
        "time_ms": response.json()["checks"]["database"]["time_ms"],
    }


@pytest.mark.django_db
def test_readiness_stays_200_and_degraded_when_the_cache_fails(client):
    with override_settings(CACHES=DUMMY_CACHE):
        response = client.get("/ready")

    assert response.status_code == 200
    assert response.json()["status"] == health.DEGRADED
    assert response.json()["checks"]["cache"]["status"] == health.DEGRADED


def test_readiness_answers_503_while_the_worker_drains(client):
    draining.start_draining()

    response = client.get("/ready")

    assert response.status_code == 503
    assert response.json()["status"] == "draining"


def test_liveness_stays_200_while_the_worker_drains(client):
    draining.start_draining()

    assert client.get("/health").status_code == 200


@pytest.mark.django_db
@override_settings(ALLOWED_HOSTS=["orders.example.com"], SECURE_SSL_REDIRECT=True, DEBUG=False)
@pytest.mark.parametrize("path", ["/health", "/ready", "/ready/"])
def test_probes_answer_the_pod_ip_as_host_over_plain_http(path):
    response = Client(HTTP_HOST=KUBELET_HOST).get(path)

    assert response.status_code == 200


@override_settings(ALLOWED_HOSTS=["orders.example.com"], SECURE_SSL_REDIRECT=True, DEBUG=False)
def test_other_paths_still_refuse_the_pod_ip_as_host():
    response = Client(HTTP_HOST=KUBELET_HOST).get("/admin/login/")

    assert response.status_code == 400
