"""What the queries cost: the inspector's open findings and pg_stat_statements' slowest."""

from django.conf import settings
from django.db.models import F

from apps.audit import database
from apps.audit.report import INFO, WARNING, Finding
from apps.observability.ops import database_report
from apps.profiling.models import QueryFinding

OPEN_STATUSES = (QueryFinding.Status.NEW, QueryFinding.Status.ACKNOWLEDGED)
LISTED = 10
SQL_SHOWN = 300


def query_findings(scope):
    """Open N+1, duplicate and slow-query findings seen in the window, by total time."""
    rows = QueryFinding.objects.filter(status__in=OPEN_STATUSES, last_seen__gte=scope.since)
    ranked = list(rows.order_by(F("total_ms").desc(), "id")[:LISTED])
    total = rows.count()
    if not ranked:
        return [
            Finding(
                "query-findings",
                INFO,
                "No open N+1, duplicate or slow-query finding",
                f"The query inspector (NPLUSONE_SAMPLE_RATE {settings.NPLUSONE_SAMPLE_RATE:g}) "
                f"recorded no new or acknowledged finding in the last {scope.minutes} min.",
            )
        ]
    findings = [
        Finding(
            f"query:{row.kind}:{row.callsite}",
            WARNING,
            f"{row.get_kind_display()} at {row.callsite}",
            f"{row.get_kind_display()} in {row.source}: {row.occurrences} occurrence(s), up to "
            f"{row.max_repeats} executions in one, {row.total_ms:.1f} ms in total, slowest "
            f"{row.max_ms:.1f} ms; SQL: {row.sample_sql[:SQL_SHOWN]}",
            _query_recommendation(row.kind),
            {
                "kind": row.kind,
                "callsite": row.callsite,
                "source": row.source,
                "occurrences": row.occurrences,
                "max_repeats": row.max_repeats,
                "total_ms": round(row.total_ms, 1),
                "max_ms": round(row.max_ms, 1),
                "status": row.status,
                "finding_id": row.pk,
            },
        )
        for row in ranked
    ]
    if total > LISTED:
        findings.append(
            Finding(
                "query-findings:more",
                INFO,
                f"{total - LISTED} more open query findings",
                f"{total} open findings in the last {scope.minutes} min; the {LISTED} costing "
                "most time are listed.",
                "Admin > Profiling > Query findings lists them all.",
            )
        )
    return findings


def _query_recommendation(kind):
    if kind in (QueryFinding.Kind.N_PLUS_ONE, QueryFinding.Kind.DUPLICATE):
        return (
            "Load the related rows once (select_related / prefetch_related) or reuse the "
            "result; mark the finding fixed once deployed."
        )
    if kind == QueryFinding.Kind.N_PLUS_ONE_WRITE:
        return "Write the rows in one statement (bulk_create, bulk_update, update())."
    return "EXPLAIN the statement and index its filter, or move the work off the request path."


def statements_schema():
    """The schema of pg_stat_statements when it is loaded and created here, else None."""
    if not database.is_postgres():
        return None
    with database.connection().cursor() as cursor:
        section = database_report.statements(cursor, limit=1)
    return section.details.get("schema") if section.applies else None


def slowest_statements(scope):
    limit = settings.SCALING_AUDIT_STATEMENTS
    if not database.is_postgres():
        return [
            Finding(
                "pg-stat-statements",
                INFO,
                "No statement statistics on SQLite",
                database_report.sqlite_statements().message,
            )
        ]
    section = database_report.statements_report(limit)
    if section.error or not section.applies:
        return [
            Finding(
                "pg-stat-statements",
                WARNING,
                "pg_stat_statements is not installed",
                section.error or section.message.split(" To enable it:")[0],
                database_report.ENABLE_STATEMENTS_HELP,
            )
        ]
    slow_ms = settings.LOG_SLOW_QUERY_MS
    findings = []
    for rank, row in enumerate(section.rows, start=1):
        mean = float(row["mean_ms"])
        slow = mean >= slow_ms
        findings.append(
            Finding(
                f"statement:{row['query_id']}",
                WARNING if slow else INFO,
                f"Statement #{rank} by total time ({float(row['share_percent'] or 0):.1f} %)",
                f"{row['calls']} calls, {float(row['total_ms']):.1f} ms in total, mean "
                f"{mean:.2f} ms, max {float(row['max_ms']):.2f} ms"
                f"{f' (mean above LOG_SLOW_QUERY_MS {slow_ms} ms)' if slow else ''}: "
                f"{row['query'][:SQL_SHOWN]}",
                "EXPLAIN (ANALYZE, BUFFERS) it and index its filter or bound it." if slow else "",
                {
                    key: (float(value) if key.endswith(("_ms", "_percent")) else value)
                    for key, value in row.items()
                    if value is not None
                },
            )
        )
    if not findings:
        findings.append(
            Finding(
                "pg-stat-statements",
                INFO,
                "pg_stat_statements has recorded no statement yet",
                section.message,
            )
        )
    return findings
