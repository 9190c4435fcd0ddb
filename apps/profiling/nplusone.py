"""Public API of the query inspector for tests and scripts.

    from apps.profiling.nplusone import detect_nplusone, assert_no_nplusone

    with detect_nplusone(threshold=3) as report:
        ...
    report.findings  # N+1 findings: .kind, .fingerprint, .count, .callsite, .sql

    with assert_no_nplusone():
        ...

A query is part of an N+1 when the same SQL shape is issued from the same call site at least
`threshold` times (default settings.NPLUSONE_THRESHOLD) with different parameters in the block.
Duplicate (identical SQL and parameters three times or more) and slow queries (at least
settings.LOG_SLOW_QUERY_MS) are in `report.duplicates` and `report.slow_queries`.
"""

import contextlib

from apps.profiling.inspector import Finding, Report, unit_of_work

__all__ = ["Finding", "Report", "assert_no_nplusone", "detect_nplusone"]


@contextlib.contextmanager
def detect_nplusone(threshold=None):
    """Record the queries of the block (this thread only); yields a Report filled at its end."""
    with unit_of_work(threshold=threshold) as report:
        yield report


@contextlib.contextmanager
def assert_no_nplusone(threshold=None):
    """Raise AssertionError at the end of the block when it ran an N+1 query pattern."""
    with detect_nplusone(threshold=threshold) as report:
        yield report
    if report.findings:
        lines = "\n".join(f"  - {finding.describe()}" for finding in report.findings)
        raise AssertionError(f"{len(report.findings)} N+1 query pattern(s) found:\n{lines}")
