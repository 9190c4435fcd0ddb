"""docker-compose.yml's topology: HAProxy in front of a scalable web service, a streaming replica,
pg_stat_statements, and the monitoring profile (Prometheus, Alertmanager, Grafana), wired to the
same files the local stack of the drills runs (tests/stack.py). No Docker engine runs here: the
files are read, and HAProxy's and Alertmanager's own checkers validate theirs."""

import os
import re
import subprocess
from pathlib import PurePosixPath

import pytest

from tests import yaml_files
from tests.stack import ALERTMANAGER_CONFIG, HAPROXY_CONFIG, PROGRAMS, PROMETHEUS_CONFIG

from . import PROJECT_ROOT, program
from .test_container_files import compose, compose_service, interpolation_default

pytestmark = pytest.mark.backend_independent

GRAFANA_PROVIDER = PROJECT_ROOT / "deploy" / "grafana" / "provisioning" / "dashboards.yaml"
POSTGRES_INIT_SCRIPT = PROJECT_ROOT / "deploy" / "postgres" / "initdb.sh"
REPLICA_ENTRYPOINT = PROJECT_ROOT / "deploy" / "postgres" / "replica-entrypoint.sh"


def interpolate(value, variables):
    """`value` as compose reads it with `variables` set: ${NAME:-default}, innermost first."""
    pattern = re.compile(r"\$\{(\w+)(?::?-([^${}]*))?\}")
    text = str(value)
    while (match := pattern.search(text)) is not None:
        name, default = match.groups()
        text = text[: match.start()] + variables.get(name, default or "") + text[match.end() :]
    return text


def mounts(service):
    """{target in the container: source in the repository} of a service's bind mounts."""
    found = {}
    for volume in compose_service(service).get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            found[target] = PROJECT_ROOT / source.removeprefix("./")
    return found


# --- load balancer and scaling ------------------------------------------------------------------


def test_web_publishes_no_host_port_so_that_it_scales():
    assert "ports" not in compose_service("web")
    assert "container_name" not in compose_service("web")


def test_load_balancer_is_published_on_loopback_only():
    ports = compose_service("loadbalancer")["ports"]
    assert ports
    assert all(str(port).startswith("127.0.0.1:") for port in ports)


def test_load_balancer_runs_the_haproxy_configuration_of_the_local_stack():
    assert HAPROXY_CONFIG in mounts("loadbalancer").values()


def test_load_balancer_finds_every_web_instance_through_compose_dns():
    environment = compose_service("loadbalancer")["environment"]
    assert environment["WEB_DNS_NAME"] in compose()["services"]
    assert environment["WEB_DNS_NAME"] == "web"


def haproxy_check(variables):
    return subprocess.run(
        [program(PROGRAMS["haproxy"], "haproxy"), "-c", "-f", str(HAPROXY_CONFIG)],
        env={**os.environ, **variables},
        capture_output=True,
        text=True,
        check=False,
    )


def test_haproxy_configuration_is_valid_as_compose_runs_it():
    checked = haproxy_check(compose_service("loadbalancer")["environment"])
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_haproxy_configuration_is_valid_as_the_local_stack_runs_it(tmp_path):
    checked = haproxy_check(
        {
            "LB_BIND": "127.0.0.1:18080",
            "LB_STATS_BIND": "127.0.0.1:18404",
            "WEB_SLOTS": "3",
            "HAPROXY_ADMIN_SOCKET": str(tmp_path / "admin.sock"),
        }
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_load_balancer_buffers_request_bodies_before_choosing_a_server():
    directives = [line.split("#")[0].strip() for line in HAPROXY_CONFIG.read_text().splitlines()]
    assert "option http-buffer-request" in directives
    assert any(directive.startswith("timeout http-request ") for directive in directives)


def test_csrf_trusted_origins_follow_the_published_port():
    origins = interpolate(
        compose_service("web")["environment"]["DJANGO_CSRF_TRUSTED_ORIGINS"], {"WEB_PORT": "9000"}
    )
    published = [
        interpolate(port, {"WEB_PORT": "9000"}) for port in compose_service("loadbalancer")["ports"]
    ]
    assert set(origins.split(",")) == {"http://localhost:9000", "http://127.0.0.1:9000"}
    assert "127.0.0.1:9000:8080" in published


def test_web_trusts_the_one_proxy_in_front_of_it():
    value = compose_service("web")["environment"]["DJANGO_TRUSTED_PROXY_COUNT"]
    assert interpolation_default(value) == "1"


# --- PostgreSQL ---------------------------------------------------------------------------------


def test_postgres_preloads_pg_stat_statements():
    command = " ".join(compose_service("postgres")["command"])
    assert "shared_preload_libraries=pg_stat_statements" in command


def test_postgres_creates_the_extension_and_the_replication_login_on_first_start():
    assert POSTGRES_INIT_SCRIPT in [
        source
        for target, source in mounts("postgres").items()
        if PurePosixPath(target).parent == PurePosixPath("/docker-entrypoint-initdb.d")
    ]
    script = POSTGRES_INIT_SCRIPT.read_text()
    assert "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" in script
    assert re.search(r"host replication \$POSTGRES_USER .* scram-sha-256", script)


def test_replica_streams_from_the_postgres_service():
    replica = compose_service("replica")
    entrypoint = mounts("replica")[replica["entrypoint"][0]]
    assert entrypoint == REPLICA_ENTRYPOINT
    assert replica["environment"]["PRIMARY_HOST"] == "postgres"
    script = REPLICA_ENTRYPOINT.read_text()
    assert "pg_basebackup" in script
    assert "--write-recovery-conf" in script


def test_web_reads_reports_from_the_replica_service():
    url = interpolation_default(compose_service("web")["environment"]["DATABASE_REPLICA_URLS"])
    assert re.fullmatch(r"postgres://orders:.+@replica:5432/orders", interpolate(url, {})), url


# --- monitoring profile -------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["prometheus", "alertmanager", "grafana"])
def test_monitoring_service_runs_only_in_the_monitoring_profile(service):
    assert compose_service(service)["profiles"] == ["monitoring"]


def test_prometheus_runs_the_project_configuration_and_rules():
    mounted = mounts("prometheus")
    (directory,) = (
        target for target, source in mounted.items() if source == PROMETHEUS_CONFIG.parent
    )
    assert (
        f"--config.file={directory}/{PROMETHEUS_CONFIG.name}"
        in compose_service("prometheus")["command"]
    )


def test_prometheus_scrapes_every_web_instance_through_compose_dns():
    jobs = {job["job_name"]: job for job in yaml_files.load(PROMETHEUS_CONFIG)["scrape_configs"]}
    (discovery,) = jobs["orders-service"]["dns_sd_configs"]
    assert discovery["names"] == ["web"]
    assert discovery["port"] == 8000


def test_prometheus_sends_the_metrics_token_web_checks():
    configuration = yaml_files.load(PROMETHEUS_CONFIG)
    jobs = {job["job_name"]: job for job in configuration["scrape_configs"]}
    credentials_file = jobs["orders-service"]["authorization"]["credentials_file"]
    (token,) = (
        item
        for item in compose_service("prometheus")["configs"]
        if item["target"] == credentials_file
    )
    content = compose()["configs"][token["source"]]["content"]
    web_token = compose_service("web")["environment"]["METRICS_TOKEN"]
    assert interpolate(content, {}) == interpolate(web_token, {})
    assert interpolate(content, {"METRICS_TOKEN": "x"}) == interpolate(
        web_token, {"METRICS_TOKEN": "x"}
    )


def test_prometheus_notifies_the_alertmanager_service():
    configuration = yaml_files.load(PROMETHEUS_CONFIG)
    targets = [
        target
        for manager in configuration["alerting"]["alertmanagers"]
        for static in manager["static_configs"]
        for target in static["targets"]
    ]
    assert targets == ["alertmanager:9093"]


def test_alertmanager_runs_the_project_configuration():
    assert ALERTMANAGER_CONFIG in mounts("alertmanager").values()


def test_alertmanager_configuration_passes_amtool():
    amtool = program("amtool", "prometheus-alertmanager")
    checked = subprocess.run(
        [amtool, "check-config", str(ALERTMANAGER_CONFIG)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_grafana_provisions_the_dashboard_where_its_provider_reads():
    mounted = mounts("grafana")
    (provider,) = yaml_files.load(GRAFANA_PROVIDER)["providers"]
    dashboards = {target for target, source in mounted.items() if source.suffix == ".json"}
    assert {str(PurePosixPath(target).parent) for target in dashboards} == {
        provider["options"]["path"]
    }
    assert any("/provisioning/datasources/" in target for target in mounted)
