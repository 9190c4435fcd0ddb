import argparse

from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError

from apps.profiling import findings
from apps.profiling.callsite import pass_through
from apps.profiling.inspector import unit_of_work


def _plain(text):
    # stderr is styled as an error by default; the findings are a report, not an error.
    return text


class Command(BaseCommand):
    help = (
        "Run a management command as one unit of work of the query inspector: "
        "`manage.py inspect_queries [--threshold N] <command> [its arguments]`. Its N+1, duplicate "
        "and slow queries are listed on stderr with their call sites (the command's own output "
        "stays on stdout) and saved as query findings with the source 'command <name>'."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--threshold",
            type=int,
            default=None,
            help="Executions from one call site that make an N+1 (default NPLUSONE_THRESHOLD).",
        )
        parser.add_argument("command_name", help="The management command to run.")
        parser.add_argument(
            "command_arguments",
            nargs=argparse.REMAINDER,
            help="Its arguments and options, passed on as they are.",
        )

    # Around the inspected command's queries, never their call site (see callsite.pass_through).
    @pass_through
    def handle(self, *args, command_name, command_arguments, threshold, **options):
        if command_name == "inspect_queries":
            raise CommandError("inspect_queries cannot inspect itself")
        if command_name not in get_commands():
            raise CommandError(f"Unknown command: {command_name!r}")
        if threshold is not None and threshold < 2:
            raise CommandError("--threshold: must be at least 2")
        try:
            with unit_of_work(threshold=threshold) as report:
                call_command(
                    command_name, *command_arguments, stdout=self.stdout, stderr=self.stderr
                )
        finally:
            # Also when the command fails: what it ran until then is what there is to see.
            self.report(command_name, report)

    def report(self, command_name, report):
        write = self.stderr.write
        found = report.all_findings
        write(
            f"inspect_queries: {report.queries} queries, {len(found)} finding(s) "
            f"in command {command_name}" + (" (truncated)" if report.truncated else ""),
            style_func=_plain,
        )
        for finding in found:
            write(f"  - {finding.describe()}", style_func=_plain)
        if not found:
            return
        findings.record_findings(report, source=f"command {command_name}")
        findings.flush_findings()
        if len(findings.buffer):
            write(
                "inspect_queries: the findings could not be saved (see the log); "
                "they are listed above",
                style_func=self.style.WARNING,
            )
