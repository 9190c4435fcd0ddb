import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.audit import rendering
from apps.audit.metrics import export
from apps.audit.report import CRITICAL, FAIL_ON_CHOICES
from apps.audit.services import AuditCannotRun, record_run, run_audit

EXIT_PASS, EXIT_FAIL, EXIT_CANNOT_RUN = 0, 1, 2


def _positive(value):
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Audit the running deployment (settings, database, request statistics, query findings, "
        "cache, replicas) and write the Production Performance & Scaling Audit. Exit code: "
        "0 PASS, 1 FAIL, 2 when it could not run."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--minutes", type=_positive, default=60, help="Window of telemetry (default 60)."
        )
        parser.add_argument("--format", choices=("markdown", "json"), default="markdown")
        parser.add_argument("--output", help="Write the report to this file (default: stdout).")
        parser.add_argument(
            "--fail-on",
            choices=FAIL_ON_CHOICES,
            default=CRITICAL,
            help="Lowest severity that fails the gate (default critical).",
        )
        parser.add_argument(
            "--instances",
            type=_positive,
            default=None,
            help="Instances (pods, hosts) of the service; default SCALING_INSTANCES.",
        )

    def handle(self, *args, minutes, format, output, fail_on, instances, **options):
        instances = settings.SCALING_INSTANCES if instances is None else instances
        try:
            report = run_audit(minutes, instances, fail_on)
        except AuditCannotRun as error:
            raise CommandError(f"scaling audit could not run: {error}", returncode=2) from None
        export(record_run(report))
        text = rendering.as_json(report) if format == "json" else rendering.as_markdown(report)
        if output:
            try:
                Path(output).write_text(text)
            except OSError as error:
                raise CommandError(
                    f"--output: cannot write {output} ({error.strerror})", returncode=2
                ) from None
        else:
            self.stdout.write(text, ending="")
        summary = f"Scaling Safety: {report.gate.verdict} ({report.gate.reason})"
        self.stderr.write(summary)
        if not report.gate.passed:
            sys.exit(EXIT_FAIL)
