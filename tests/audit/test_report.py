"""The report's shape: five sections in order, the same content as JSON, the gate's rule."""

import json

import pytest

from apps.audit import rendering
from apps.audit.report import (
    CRITICAL,
    GAPS,
    INFO,
    PERFORMANCE,
    SCALING,
    WARNING,
    Finding,
    Report,
    decide,
)
from tests.audit.conftest import scope

FIVE_SECTIONS = [
    "1. Performance Bottlenecks",
    "2. Logging & Monitoring Readiness",
    "3. Scaling Strategy",
    "4. Observability Gaps & Recommendations",
    "5. Gate: Scaling Safety",
]
DEPLOYMENT = {
    "environment": "test",
    "release": "abc",
    "database": "SQLite file db",
    "replicas": [],
    "cache": "LocMemCache",
    "workers": 2,
    "threads": 8,
}


def report_of(findings, fail_on=CRITICAL):
    return Report(scope(fail_on=fail_on), DEPLOYMENT, findings, decide(findings, fail_on), 12.0)


def sample_findings():
    return [
        Finding("budget", CRITICAL, "Over budget", "80 > 60", "Lower the pool", section=SCALING),
        Finding("n-plus-one", WARNING, "N+1", "12 x", "Prefetch", section=PERFORMANCE),
        Finding("logs", INFO, "JSON logs", "LOG_FORMAT=json", section=GAPS),
    ]


def test_markdown_has_the_five_sections_in_order():
    markdown = rendering.as_markdown(report_of(sample_findings()))

    headings = [line[3:] for line in markdown.splitlines() if line.startswith("## ")]
    assert headings == FIVE_SECTIONS


def test_json_has_the_same_five_sections_in_order():
    document = json.loads(rendering.as_json(report_of(sample_findings())))

    assert [section["title"] for section in document["sections"]] == FIVE_SECTIONS


def test_each_finding_appears_in_its_section_with_evidence_and_recommendation():
    markdown = rendering.as_markdown(report_of(sample_findings()))
    scaling = markdown.split("## 3. Scaling Strategy")[1].split("## 4.")[0]

    assert "`budget`" in scaling
    assert "80 > 60" in scaling
    assert "Lower the pool" in scaling


def test_a_critical_finding_fails_the_gate_and_is_named_as_its_reason():
    report = report_of(sample_findings())
    gate = json.loads(rendering.as_json(report))["sections"][-1]

    assert gate["verdict"] == "FAIL"
    assert gate["deciding"] == ["budget"]


def test_warnings_alone_pass_the_default_gate():
    findings = [item for item in sample_findings() if item.severity != CRITICAL]

    assert report_of(findings).gate.passed


def test_fail_on_warning_fails_on_a_warning():
    findings = [item for item in sample_findings() if item.severity != CRITICAL]

    gate = report_of(findings, fail_on=WARNING).gate

    assert not gate.passed
    assert [item.id for item in gate.deciding] == ["n-plus-one"]


@pytest.mark.parametrize("severity", [CRITICAL, WARNING])
def test_the_checklist_lists_what_asks_for_action(severity):
    findings = [Finding("x", severity, "Title", "evidence", "Do this", section=SCALING)]

    markdown = rendering.as_markdown(report_of(findings))
    gaps = markdown.split("## 4.")[1].split("## 5.")[0]

    assert f"- [ ] **{severity}** `x`: Do this" in gaps
