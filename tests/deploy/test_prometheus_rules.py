"""deploy/prometheus/: the rules pass promtool's checks and unit tests, and query only metrics the
app really exports.

The exported names come from the app itself: /metrics is rendered through the Django test client,
so renaming a metric in the code fails here rather than silently emptying an alert.

promtool comes from Debian's `prometheus` package. Without it the promtool tests skip with the
command that installs it, unless REQUIRE_PROMTOOL=1 (set by .ci/run), where they fail instead.
"""

import os
import re
import shutil
import subprocess

import prometheus_client
import pytest
from django.db import connections
from django.test import Client, override_settings

from tests import yaml_files

from . import PROJECT_ROOT

pytestmark = pytest.mark.backend_independent

RULES_DIRECTORY = PROJECT_ROOT / "deploy" / "prometheus"
RULES_FILE = RULES_DIRECTORY / "rules.yml"
RULES_TEST_FILE = RULES_DIRECTORY / "rules_test.yml"
EXAMPLE_CONFIG_FILE = RULES_DIRECTORY / "prometheus.yml"
PROMTOOL_INSTALL = "apt-get update && apt-get install -y --no-install-recommends prometheus"
METRICS_TOKEN = "rules-test-metrics-token-4f1c"
# Made by Prometheus for every target, not exported by the app.
SCRAPE_METRICS = {"up"}
SEVERITIES = {"critical", "warning", "info"}
# Labels a recording rule may keep: bounded by the deployment (job) and the URL patterns (view).
RECORDING_LABELS = {"job", "view", "le"}

PROMQL_KEYWORDS = {
    *("and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right"),
    *("offset", "bool", "inf", "nan", "atan2"),
}


# --- metric names ------------------------------------------------------------------------------


def metric_names(expression):
    """Names of the series a PromQL expression selects (metrics and recording rules).

    Strings, label matchers, ranges, grouping clauses and Grafana variables are dropped first;
    what is left are function names (followed by a parenthesis), keywords, numbers and names.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expression)
    text = re.sub(r"\$\{[^}]*\}|\$\w+", "1", text)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w:.])[A-Za-z_:][\w:]*", text):
        if re.match(r"\s*\(", text[match.end() :]) or match.group() in PROMQL_KEYWORDS:
            continue
        names.add(match.group())
    return names


def _sample_names(family_name, family_type):
    if family_type == "histogram":
        return {f"{family_name}_bucket", f"{family_name}_sum", f"{family_name}_count"}
    if family_type == "summary":
        return {family_name, f"{family_name}_sum", f"{family_name}_count"}
    return {family_name}


def _process_collector_families():
    """Families of prometheus-client's process, platform and GC collectors.

    They are in a single process's registry only: under gunicorn /metrics renders the
    multiprocess collector alone, so rules must not rely on them.
    """
    names = set()
    for collector in (
        prometheus_client.PROCESS_COLLECTOR,
        prometheus_client.PLATFORM_COLLECTOR,
        prometheus_client.GC_COLLECTOR,
    ):
        for family in collector.collect():
            names.add(family.name)
            names.update(sample.name for sample in family.samples)
    return names


def exported_metric_names():
    """Sample names /metrics exports, read from the app's own answer (every `# TYPE` family,
    also those no request has touched yet).

    The database wrappers are created first: their django-prometheus backends register the
    `django_db_*` metrics when imported, as they are at a server's first request. `_created`
    samples are left out: the multiprocess exposition under gunicorn has none.
    """
    connections.all()
    with override_settings(METRICS_TOKEN=METRICS_TOKEN):
        response = Client().get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200, response.content
    excluded = _process_collector_families()
    names = set()
    for family_name, family_type in re.findall(
        r"^# TYPE (\S+) (\S+)$", response.content.decode(), re.MULTILINE
    ):
        if family_name.endswith("_created") or family_name in excluded:
            continue
        names |= _sample_names(family_name, family_type)
    assert "django_http_responses_total_by_status_view_method_total" in names, sorted(names)
    return names


# --- the rules file ----------------------------------------------------------------------------


def rule_groups():
    return yaml_files.load(RULES_FILE)["groups"]


def rules():
    return [rule for group in rule_groups() for rule in group["rules"]]


def alerting_rules():
    return [rule for rule in rules() if "alert" in rule]


def recording_rules():
    return [rule for rule in rules() if "record" in rule]


def recorded_names():
    return {rule["record"] for rule in recording_rules()}


def rule_unit_tests():
    return yaml_files.load(RULES_TEST_FILE)["tests"]


# --- promtool ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def promtool():
    path = shutil.which("promtool")
    if path is None:
        reason = f"promtool not found: install it with `{PROMTOOL_INSTALL}`"
        if os.environ.get("REQUIRE_PROMTOOL") == "1":
            pytest.fail(f"{reason} (REQUIRE_PROMTOOL=1: the rule tests must run)", pytrace=False)
        pytest.skip(reason)
    return path


def run_promtool(promtool, *arguments):
    completed = subprocess.run(
        [promtool, *arguments],
        cwd=RULES_DIRECTORY,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    return output


def test_promtool_checks_the_rules(promtool):
    output = run_promtool(promtool, "check", "rules", RULES_FILE.name)
    assert f"SUCCESS: {len(rules())} rules found" in output, output


def test_promtool_unit_tests_of_the_rules_pass(promtool):
    output = run_promtool(promtool, "test", "rules", RULES_TEST_FILE.name)
    assert "SUCCESS" in output, output


def test_example_prometheus_configuration_is_valid(promtool):
    # --syntax-only: the scrape credentials file exists only where Prometheus runs.
    run_promtool(promtool, "check", "config", "--syntax-only", EXAMPLE_CONFIG_FILE.name)
    config = yaml_files.load(EXAMPLE_CONFIG_FILE)
    assert RULES_FILE.name in config["rule_files"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert "credentials_file" in jobs["orders-service"]["authorization"]


# --- what the rules query ----------------------------------------------------------------------


def test_metric_names_reads_selectors_not_labels_functions_or_variables():
    expression = (
        'sum by (job, view) (rate(a_total{job="x", view=~"$view"}[$__rate_interval])) '
        "/ on (job) group_left b:rate5m offset 1h > 1e-3 and absent(up) "
        'or histogram_quantile(0.95, c_bucket{le="+Inf"}) unless d'
    )
    assert metric_names(expression) == {"a_total", "b:rate5m", "up", "c_bucket", "d"}


def test_rules_query_only_metrics_the_app_exports():
    known = exported_metric_names() | recorded_names() | SCRAPE_METRICS
    for rule in rules():
        used = metric_names(rule["expr"])
        name = rule.get("alert") or rule["record"]
        assert used, f"{name}: no metric found in {rule['expr']!r}"
        assert used <= known, f"{name} queries metrics /metrics does not export: {used - known}"


def test_recording_rules_keep_only_bounded_labels():
    for rule in recording_rules():
        for clause in re.findall(r"\b(by|without)\s*\(([^)]*)\)", rule["expr"]):
            keyword, labels = clause
            assert keyword == "by", f"{rule['record']}: `without` keeps every other label"
            kept = {label.strip() for label in labels.split(",")}
            assert kept <= RECORDING_LABELS, f"{rule['record']} keeps {kept - RECORDING_LABELS}"


def test_recording_rule_names_follow_level_metric_operation():
    for name in recorded_names():
        level, metric, operation = name.split(":")
        assert level.split("_")[0] == "job", name
        assert metric, name
        assert operation, name


def test_every_recorded_series_is_used():
    used = set()
    for rule in rules():
        used |= metric_names(rule["expr"])
    dashboard = (PROJECT_ROOT / "deploy" / "grafana" / "orders-service.json").read_text()
    unused = {name for name in recorded_names() - used if name not in dashboard}
    assert not unused, f"recording rules neither alerts nor the dashboard read: {unused}"


# --- alerts ------------------------------------------------------------------------------------


def test_alerts_have_severity_annotations_and_a_for_duration():
    names = [rule["alert"] for rule in alerting_rules()]
    assert len(names) == len(set(names)), names
    for rule in alerting_rules():
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
        assert "{{ $labels." in rule["annotations"]["summary"], rule["alert"]


def test_alerts_cover_what_ops_page_on():
    expressions = {rule["alert"]: rule["expr"] for rule in alerting_rules()}
    assert any("up{" in expression for expression in expressions.values())
    for metric in (
        "django_http_responses_total_by_status_view_method_total",
        "django_http_requests_latency_seconds_by_view_method_bucket",
        "orders_worker_db_pool_requests_waiting",
        "orders_worker_db_pool_in_use",
        "orders_telemetry_flush_failures_total",
        "orders_slow_requests_total",
        "orders_query_findings_total",
        "django_db_query_duration_seconds_bucket",
        "django_db_new_connection_errors_total",
        "orders_worker_cpu_seconds",
        "orders_memory_used_bytes",
        "orders_worker_open_fds",
        "orders_postgres_connections",
        "orders_disk_free_bytes",
        "orders_db_unreachable",
        "orders_db_replica_state",
        "orders_db_replica_lag_seconds",
    ):
        reads = [metric in metric_names(rule["expr"]) for rule in rules()]
        assert any(reads), f"no rule reads {metric}"
    n_plus_one = [rule for rule in alerting_rules() if "n_plus_one" in rule["expr"]]
    assert [rule["labels"]["severity"] for rule in n_plus_one] == ["info"]


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    firing, quiet = set(), set()
    for case in rule_unit_tests():
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in alerting_rules()}
    assert alerts <= firing, f"alerts no unit test makes fire: {alerts - firing}"
    assert alerts <= quiet, f"alerts no unit test keeps quiet: {alerts - quiet}"
