"""deploy/grafana/orders-service.json: valid, laid out, and querying only what exists: metrics
the app exports (rendered from its own /metrics) and the recording rules of rules.yml."""

import json
import re

import pytest

from tests import yaml_files

from . import PROJECT_ROOT
from .test_prometheus_rules import (
    SCRAPE_METRICS,
    exported_metric_names,
    metric_names,
    recorded_names,
)

GRAFANA_DIRECTORY = PROJECT_ROOT / "deploy" / "grafana"
DASHBOARD_FILE = GRAFANA_DIRECTORY / "orders-service.json"
PROVIDER_FILE = GRAFANA_DIRECTORY / "provisioning" / "dashboards.yaml"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def dashboard():
    return json.loads(DASHBOARD_FILE.read_text())


def all_panels(panels=None):
    """Every panel, those nested in collapsed rows included."""
    found = []
    for panel in dashboard()["panels"] if panels is None else panels:
        found.append(panel)
        found.extend(all_panels(panel.get("panels", [])))
    return found


def query_panels():
    return [panel for panel in all_panels() if panel["type"] != "row"]


def variables():
    return {variable["name"]: variable for variable in dashboard()["templating"]["list"]}


def variable_query_expression(variable):
    """The series selector of a `label_values(selector, label)` variable query."""
    query = variable["query"]
    text = query["query"] if isinstance(query, dict) else query
    match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", text.strip())
    assert match, f"variable {variable['name']}: unexpected query {text!r}"
    return match.group(1)


@pytest.fixture(scope="module")
def known_names():
    return exported_metric_names() | recorded_names() | SCRAPE_METRICS


def test_dashboard_is_json_with_a_stable_uid():
    document = dashboard()
    assert document["uid"] == "orders-service"
    assert document["title"]
    assert isinstance(document["schemaVersion"], int)
    # Provisioned dashboards carry no instance-specific id.
    assert "id" not in document or document["id"] is None


def test_panel_ids_are_unique():
    ids = [panel["id"] for panel in all_panels()]
    assert all(isinstance(panel_id, int) for panel_id in ids), ids
    assert len(ids) == len(set(ids)), sorted(ids)


def test_panels_do_not_overlap():
    boxes = [(panel["title"], panel["gridPos"]) for panel in dashboard()["panels"]]
    for index, (title, box) in enumerate(boxes):
        assert box["x"] >= 0, title
        assert box["x"] + box["w"] <= 24, title
        for other_title, other in boxes[index + 1 :]:
            apart = (
                box["x"] + box["w"] <= other["x"]
                or other["x"] + other["w"] <= box["x"]
                or box["y"] + box["h"] <= other["y"]
                or other["y"] + other["h"] <= box["y"]
            )
            assert apart, f"{title!r} overlaps {other_title!r}"


def test_datasource_is_a_variable():
    datasource = variables()["datasource"]
    assert datasource["type"] == "datasource"
    assert datasource["query"] == "prometheus"
    for panel in query_panels():
        assert panel["datasource"] == DATASOURCE, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
    for variable in variables().values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE, variable["name"]


def test_every_panel_queries_and_filters_on_the_job():
    for panel in query_panels():
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            selectors = re.findall(r"[\w:]+\{[^}]*\}", target["expr"])
            assert selectors, f"{panel['title']}: {target['expr']}"
            for selector in selectors:
                assert 'job="$job"' in selector, f"{panel['title']}: {selector}"


def test_panels_query_only_exported_metrics_and_recording_rules(known_names):
    for panel in query_panels():
        for target in panel["targets"]:
            used = metric_names(target["expr"])
            assert used, f"{panel['title']}: no metric in {target['expr']!r}"
            unknown = used - known_names
            assert not unknown, f"{panel['title']} queries what nothing exports: {unknown}"


def test_variables_query_only_exported_metrics(known_names):
    for variable in variables().values():
        if variable["type"] != "query":
            continue
        used = metric_names(variable_query_expression(variable))
        assert used, variable["name"]
        assert used <= known_names, f"variable {variable['name']}: {used - known_names}"


def test_dashboard_shows_what_ops_watch():
    expressions = " ".join(
        target["expr"] for panel in query_panels() for target in panel["targets"]
    )
    for name in (
        "job:django_http_responses:rate5m",
        "job:django_http_responses_5xx:ratio_rate5m",
        "job_view:django_http_requests_latency_seconds:quantile_rate5m",
        "orders_db_pool_requests_waiting",
        "orders_query_findings_total",
        "orders_telemetry_flush_failures_total",
        "orders_db_replica_lag_seconds",
        "orders_worker_cpu_seconds",
        "orders_worker_resident_memory_bytes",
        "orders_worker_open_fds",
        "orders_postgres_connections",
        "django_cache_get_hits_total",
    ):
        assert name in expressions, name
    quantiles = set(re.findall(r'quantile="([\d.]+)"', expressions))
    assert {"0.5", "0.95", "0.99"} <= quantiles


def test_provider_points_grafana_at_a_directory():
    provider = yaml_files.load(PROVIDER_FILE)
    assert provider["apiVersion"] == 1
    (only,) = provider["providers"]
    assert only["type"] == "file"
    assert only["options"]["path"].startswith("/")
