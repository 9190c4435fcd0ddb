"""What an audit produces: findings, the five sections they sit in, and the gate's decision.

A finding is one measured statement: an id, a severity, the evidence with its numbers (`data`
holds them for machines), and what to do about it. The report's sections and their order are
the audit document's; the gate is decided from the findings alone.
"""

import dataclasses
import datetime as dt

CRITICAL = "critical"
WARNING = "warning"
INFO = "info"
SEVERITIES = (CRITICAL, WARNING, INFO)
FAIL_ON_CHOICES = (CRITICAL, WARNING)

PERFORMANCE = "performance"
MONITORING = "monitoring"
SCALING = "scaling"
GAPS = "gaps"
GATE = "gate"
SECTION_TITLES = {
    PERFORMANCE: "1. Performance Bottlenecks",
    MONITORING: "2. Logging & Monitoring Readiness",
    SCALING: "3. Scaling Strategy",
    GAPS: "4. Observability Gaps & Recommendations",
    GATE: "5. Gate: Scaling Safety",
}
SECTIONS = tuple(SECTION_TITLES)


@dataclasses.dataclass
class Finding:
    id: str
    severity: str
    title: str
    evidence: str
    recommendation: str = ""
    data: dict = dataclasses.field(default_factory=dict)
    section: str = ""

    def as_json(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Scope:
    """What the audit looks at: the window of telemetry and the deployment's size."""

    minutes: int
    instances: int
    fail_on: str
    now: dt.datetime

    @property
    def since(self):
        return self.now - dt.timedelta(minutes=self.minutes)


@dataclasses.dataclass
class Gate:
    passed: bool
    fail_on: str
    deciding: list  # the findings that failed it (or, when it passes, none)

    @property
    def verdict(self):
        return "PASS" if self.passed else "FAIL"

    @property
    def reason(self):
        if not self.deciding:
            worst = "critical" if self.fail_on == CRITICAL else "critical or warning"
            return f"No {worst} finding."
        ids = ", ".join(finding.id for finding in self.deciding)
        return f"{len(self.deciding)} finding(s) at or above {self.fail_on}: {ids}."


def decide(findings, fail_on):
    failing = {CRITICAL} if fail_on == CRITICAL else {CRITICAL, WARNING}
    deciding = [finding for finding in findings if finding.severity in failing]
    return Gate(passed=not deciding, fail_on=fail_on, deciding=deciding)


@dataclasses.dataclass
class Report:
    scope: Scope
    deployment: dict
    findings: list
    gate: Gate
    duration_ms: float

    def section(self, key):
        ranked = sorted(
            (finding for finding in self.findings if finding.section == key),
            key=lambda finding: SEVERITIES.index(finding.severity),
        )
        return ranked

    def counts(self):
        return {
            severity: sum(finding.severity == severity for finding in self.findings)
            for severity in SEVERITIES
        }

    def checklist(self):
        """Section 4: every finding that asks for something, worst first, then what passed."""
        open_items = sorted(
            (finding for finding in self.findings if finding.severity != INFO),
            key=lambda finding: (SEVERITIES.index(finding.severity), finding.id),
        )
        return open_items

    def as_json(self):
        return {
            "title": "Production Performance & Scaling Audit",
            "generated_at": self.scope.now.isoformat(),
            "duration_ms": self.duration_ms,
            "scope": {
                "minutes": self.scope.minutes,
                "since": self.scope.since.isoformat(),
                "instances": self.scope.instances,
                "fail_on": self.scope.fail_on,
            },
            "deployment": self.deployment,
            "counts": self.counts(),
            "sections": [
                {
                    "key": key,
                    "title": SECTION_TITLES[key],
                    **self._section_json(key),
                }
                for key in SECTIONS
            ],
        }

    def _section_json(self, key):
        if key == GATE:
            return {
                "verdict": self.gate.verdict,
                "passed": self.gate.passed,
                "fail_on": self.gate.fail_on,
                "reason": self.gate.reason,
                "deciding": [finding.id for finding in self.gate.deciding],
            }
        findings = [finding.as_json() for finding in self.section(key)]
        if key == GAPS:
            checklist = [
                {
                    "id": finding.id,
                    "severity": finding.severity,
                    "done": False,
                    "recommendation": finding.recommendation,
                }
                for finding in self.checklist()
            ]
            return {"findings": findings, "checklist": checklist}
        return {"findings": findings}
