"""/health and /ready in this process, through the project's middleware."""

import pytest
from django.test import Client, override_settings
from health_check.exceptions import ServiceUnavailable

from apps.observability.health import checks as health
from apps.observability.health import draining, middleware
from tests.observability.logging_capture import captured_console, json_lines

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


# --- What probes log ------------------------------------------------------------------------------


@pytest.fixture
def readiness_log(monkeypatch):
    """A process that has not probed readiness yet."""
    monkeypatch.setattr(middleware, "readiness_log", middleware.ReadinessLog())


def probe_lines(client, path, times=1):
    with captured_console() as console:
        responses = [client.get(path) for _ in range(times)]
    lines = json_lines(console.getvalue())
    # The health checks log their own failures (apps.observability.health.checks); not about probes.
    return responses, [
        line for line in lines if line["logger"] != "apps.observability.health.checks"
    ]


@pytest.mark.django_db
@pytest.mark.usefixtures("readiness_log")
def test_failing_readiness_is_logged_once_as_a_warning_not_per_probe(client, monkeypatch):
    fail_database_check(monkeypatch)

    responses, lines = probe_lines(client, "/ready", times=3)

    assert [response.status_code for response in responses] == [503, 503, 503]
    # Not Django's "Service Unavailable: /ready" at ERROR on every probe.
    assert [line for line in lines if line["logger"] == "django.request"] == []
    assert [line for line in lines if line["level"] in ("error", "critical")] == []
    (line,) = lines
    assert (line["logger"], line["level"], line["event"]) == (
        "apps.observability.probes",
        "warning",
        "readiness_failing",
    )
    assert line["status"] == health.FAILING
    assert line["failing_checks"] == {"database": "connection refused"}


@pytest.mark.django_db
@pytest.mark.usefixtures("readiness_log")
def test_readiness_is_logged_again_when_the_failure_changes_and_when_it_recovers(
    client, monkeypatch
):
    def run(self):
        raise ServiceUnavailable("too many connections")

    with monkeypatch.context() as patch:
        fail_database_check(patch)
        _, failing = probe_lines(client, "/ready", times=2)
        patch.setattr(health.DatabaseCheck, "run", run)
        _, changed = probe_lines(client, "/ready", times=2)
    responses, recovered = probe_lines(client, "/ready", times=2)

    assert [line["event"] for line in failing] == ["readiness_failing"]
    assert [line["failing_checks"] for line in changed] == [{"database": "too many connections"}]
    assert [response.status_code for response in responses] == [200, 200]
    assert [(line["level"], line["event"]) for line in recovered] == [
        ("info", "readiness_restored")
    ]


@pytest.mark.usefixtures("readiness_log")
def test_draining_is_logged_once_at_info(client):
    draining.start_draining()

    _, lines = probe_lines(client, "/ready", times=3)

    assert [(line["level"], line["event"], line["status"]) for line in lines] == [
        ("info", "readiness_failing", "draining")
    ]


@pytest.mark.django_db
@pytest.mark.usefixtures("readiness_log")
def test_ready_probes_write_no_line(client):
    _, lines = probe_lines(client, "/ready", times=2)

    assert lines == []


@pytest.mark.django_db
@pytest.mark.usefixtures("metrics_token_unset")
def test_unauthorised_metrics_scrapes_are_still_logged_by_django(client):
    # Only the liveness and readiness probes are quiet: a scraper without the token is a fault.
    _, lines = probe_lines(client, "/metrics")

    assert [(line["logger"], line["level"]) for line in lines] == [("django.request", "warning")]


@pytest.fixture
def metrics_token_unset():
    with override_settings(METRICS_TOKEN=""):
        yield
