"""Shared by the query findings tests: an empty buffer around each test, real findings to record."""

import pytest
from django.db import connection

from apps.profiling import findings
from apps.profiling.inspector import unit_of_work


@pytest.fixture(autouse=True)
def empty_findings_buffer():
    findings.buffer.take()
    yield
    findings.buffer.take()


def n_plus_one_report(repeats=6):
    """The report of a unit that read `repeats` rows one by one: one N+1 finding."""
    with unit_of_work(threshold=3) as report, connection.cursor() as cursor:
        for number in range(repeats):
            cursor.execute("SELECT %s", [number])
    assert [finding.kind for finding in report.all_findings] == ["n_plus_one"]
    return report
