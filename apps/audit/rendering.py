"""The report as Markdown (the audit document) or JSON (the same content, for machines)."""

import json

from apps.audit.report import GAPS, GATE, SECTION_TITLES, SECTIONS

SEVERITY_MARKS = {"critical": "CRITICAL", "warning": "WARNING", "info": "info"}


def as_json(report):
    return json.dumps(report.as_json(), indent=2, default=str) + "\n"


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _finding_lines(finding):
    lines = [
        f"#### {SEVERITY_MARKS[finding.severity]} · {finding.title}",
        "",
        f"- **id:** `{finding.id}`",
        f"- **evidence:** {finding.evidence}",
    ]
    if finding.recommendation:
        lines.append(f"- **recommendation:** {finding.recommendation}")
    lines.append("")
    return lines


def as_markdown(report):
    scope = report.scope
    counts = report.counts()
    deployment = report.deployment
    lines = [
        "# Production Performance & Scaling Audit",
        "",
        f"Generated {scope.now:%Y-%m-%d %H:%M:%S} UTC by `manage.py scaling_audit` in "
        f"{report.duration_ms / 1000:.1f} s, from the live deployment: window of the last "
        f"{scope.minutes} min (since {scope.since:%Y-%m-%d %H:%M} UTC), "
        f"**{scope.instances} instance(s)** (--instances / SCALING_INSTANCES), gate fails on "
        f"{scope.fail_on}.",
        "",
        f"Deployment: {deployment['environment']}, release {deployment['release']}, "
        f"{deployment['database']}, replicas: {', '.join(deployment['replicas']) or 'none'}, "
        f"cache {deployment['cache']}, {deployment['workers']} workers x "
        f"{deployment['threads']} threads per instance.",
        "",
        f"Findings: {counts['critical']} critical, {counts['warning']} warning, "
        f"{counts['info']} info.",
        "",
    ]
    for key in SECTIONS:
        lines += [f"## {SECTION_TITLES[key]}", ""]
        if key == GATE:
            lines += _gate_lines(report)
            continue
        if key == GAPS:
            lines += _checklist_lines(report)
        findings = report.section(key)
        if key == GAPS and findings:
            lines += ["### Settings and retention", ""]
        for finding in findings:
            lines += _finding_lines(finding)
    return "\n".join(lines).rstrip() + "\n"


def _checklist_lines(report):
    items = report.checklist()
    lines = ["### Checklist", ""]
    if not items:
        lines += ["- [x] Nothing to do: every finding is informational.", ""]
        return lines
    for finding in items:
        lines.append(
            f"- [ ] **{finding.severity}** `{finding.id}`: "
            f"{_cell(finding.recommendation or finding.title)}"
        )
    lines.append("")
    return lines


def _gate_lines(report):
    gate = report.gate
    lines = [f"**Scaling Safety: {gate.verdict}**", "", f"Reason: {gate.reason}", ""]
    if gate.deciding:
        lines += ["| finding | severity | evidence |", "| --- | --- | --- |"]
        lines += [
            f"| `{_cell(finding.id)}` | {finding.severity} | {_cell(finding.evidence)} |"
            for finding in gate.deciding
        ]
        lines.append("")
    return lines
