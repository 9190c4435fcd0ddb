"""The drills' faster clock (tests/stack.py: compress_rule_time): the project's rules with every
time range, `for` and interval divided, still valid rules."""

import yaml

from tests import yaml_files
from tests.stack import PROMETHEUS_CONFIG, compress_rule_time

from .test_prometheus_rules import promtool, run_promtool

__all__ = ["promtool"]  # the fixture, used by name


def rules(expression, duration):
    return {
        "groups": [{"name": "g", "rules": [{"alert": "A", "expr": expression, "for": duration}]}]
    }


def test_faster_clock_divides_ranges_subqueries_and_for_by_its_factor():
    compressed = compress_rule_time(
        rules("rate(x[5m]) > 0 and max_over_time(y[1h:1m]) > 0 unless z[1d]", "2m"), 60
    )
    (rule,) = compressed["groups"][0]["rules"]
    assert rule["expr"] == "rate(x[5s]) > 0 and max_over_time(y[60s:1s]) > 0 unless z[1440s]"
    assert rule["for"] == "2s"


def test_faster_clock_keeps_every_duration_at_least_one_second():
    compressed = compress_rule_time(rules("rate(x[30s]) > 0", "10s"), 60)
    (rule,) = compressed["groups"][0]["rules"]
    assert (rule["expr"], rule["for"]) == ("rate(x[1s]) > 0", "1s")


def test_project_rules_on_the_faster_clock_pass_promtool(promtool, tmp_path):
    checked = 0
    for pattern in yaml_files.load(PROMETHEUS_CONFIG)["rule_files"]:
        for source in PROMETHEUS_CONFIG.parent.glob(pattern):
            compressed = compress_rule_time(yaml_files.load(source), 60)
            target = tmp_path / source.name
            target.write_text(yaml.safe_dump(compressed))
            output = run_promtool(promtool, "check", "rules", str(target))
            assert "SUCCESS" in output, output
            checked += 1
    assert checked
