"""manage.py scaling_audit: formats, output file, the gate's exit code, the recorded run."""

import json

import pytest
from django.core.management import CommandError, call_command

from apps.audit.models import AuditRun
from tests.processes import free_port, project_environment, run_manage

pytestmark = [pytest.mark.django_db]


def audit(*arguments):
    """The command's exit code and standard output."""
    from io import StringIO

    stdout, stderr = StringIO(), StringIO()
    try:
        call_command("scaling_audit", *arguments, stdout=stdout, stderr=stderr)
    except SystemExit as exit_:
        return exit_.code, stdout.getvalue()
    return 0, stdout.getvalue()


def test_a_clean_fresh_deployment_passes():
    code, markdown = audit()

    assert code == 0
    assert "**Scaling Safety: PASS**" in markdown


def test_a_critical_finding_exits_1_and_names_it(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.file"

    code, markdown = audit("--instances", "2")

    assert code == 1
    assert "**Scaling Safety: FAIL**" in markdown
    assert "`sessions`" in markdown.split("## 5. Gate")[1]


def test_fail_on_warning_fails_on_warnings(settings):
    settings.METRICS_TOKEN = ""

    code, _ = audit("--fail-on", "warning")

    assert code == 1


def test_the_instance_count_is_stated_in_the_report():
    _, markdown = audit("--instances", "3")

    assert "**3 instance(s)**" in markdown


def test_the_instance_count_defaults_to_scaling_instances(settings):
    settings.SCALING_INSTANCES = 5

    _, output = audit("--format", "json")

    assert json.loads(output)["scope"]["instances"] == 5


def test_json_carries_every_finding_with_id_severity_evidence_and_recommendation():
    _, output = audit("--format", "json", "--minutes", "15")

    document = json.loads(output)
    findings = [item for section in document["sections"] for item in section.get("findings", [])]
    assert document["scope"]["minutes"] == 15
    assert findings
    for item in findings:
        assert {"id", "severity", "evidence", "recommendation"} <= set(item)
        assert item["severity"] in {"critical", "warning", "info"}


def test_output_writes_the_report_to_a_file(tmp_path):
    path = tmp_path / "audit.md"

    _, stdout = audit("--output", str(path))

    assert stdout == ""
    assert path.read_text().startswith("# Production Performance & Scaling Audit")


def test_an_unwritable_output_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="--output: cannot write"):
        call_command("scaling_audit", "--output", str(tmp_path / "missing" / "audit.md"))


def test_each_run_is_recorded_with_its_verdict():
    audit()

    run = AuditRun.objects.get()
    assert run.passed is True
    assert [section["key"] for section in run.report["sections"]][-1] == "gate"


@pytest.mark.system
def test_an_unreachable_database_exits_2_naming_it():
    url = f"postgres://postgres@127.0.0.1:{free_port()}/orders_audit"
    environment = project_environment(
        DJANGO_ENV="test", DATABASE_URL=url, DB_CONNECT_TIMEOUT=1, DB_POOL="false"
    )

    completed = run_manage("scaling_audit", environment=environment)

    assert completed.returncode == 2, completed.stderr
    assert "could not run" in completed.stderr
    assert "orders_audit at 127.0.0.1" in completed.stderr
    assert "Traceback" not in completed.stderr
