"""The schema against the workload: foreign keys without an index, large tables scanned."""

from django.conf import settings

from apps.audit import database
from apps.audit.report import CRITICAL, INFO, WARNING, Finding
from apps.observability.ops import database_report

SEQUENTIAL_SCANS_SQL = """
SELECT relname AS table_name, n_live_tup AS live_rows, seq_scan AS sequential_scans,
       COALESCE(idx_scan, 0) AS index_scans, seq_tup_read AS rows_read_sequentially
FROM pg_stat_user_tables
WHERE n_live_tup >= %s
ORDER BY seq_tup_read DESC
"""


def foreign_key_indexes(scope):
    rows = database_report.unindexed_foreign_keys()
    if not rows:
        return [
            Finding(
                "foreign-keys",
                INFO,
                "Every foreign key has an index",
                f"{database.describe()}: every foreign key's columns lead an index.",
            )
        ]
    return [
        Finding(
            f"fk-unindexed:{row['table_name']}.{'_'.join(row['columns'])}",
            # Every foreign key here is meant to lead an index: one without grows into full
            # scans of the table on each delete of the row it references.
            CRITICAL,
            f"Foreign key {row['table_name']}({', '.join(row['columns'])}) has no index",
            f"{row['table_name']}.{', '.join(row['columns'])} references "
            f"{row['referenced_table']} ({row['constraint_name']}) and no index starts with "
            f"it{_size_text(row)}: deleting or updating a referenced row, and joins from "
            f"{row['referenced_table']}, scan the whole table.",
            f"CREATE INDEX CONCURRENTLY ON {row['table_name']} ({', '.join(row['columns'])}), "
            "or lead an existing composite index with it (in a migration).",
            {key: row[key] for key in ("table_name", "columns", "referenced_table")},
        )
        for row in rows
    ]


def _size_text(row):
    size = row.get("table_bytes")
    return f" (table {size / 2**20:.1f} MiB)" if size is not None else ""


def sequential_scans(scope):
    minimum = settings.SCALING_AUDIT_LARGE_TABLE_ROWS
    if not database.is_postgres():
        return [
            Finding(
                "sequential-scans",
                INFO,
                "Scan counts are not kept by SQLite",
                "SQLite does not count sequential and index scans per table "
                "(PostgreSQL's pg_stat_user_tables does).",
            )
        ]
    rows = database.fetch(SEQUENTIAL_SCANS_SQL, (minimum,))
    share = settings.SCALING_AUDIT_SEQUENTIAL_SCAN_PERCENT
    scanned = []
    for row in rows:
        scans = row["sequential_scans"] + row["index_scans"]
        row["sequential_percent"] = round(100 * row["sequential_scans"] / scans, 1) if scans else 0
        if row["sequential_scans"] and row["sequential_percent"] > share:
            scanned.append(row)
    if not scanned:
        return [
            Finding(
                "sequential-scans",
                INFO,
                "No large table is read mostly by sequential scans",
                f"{len(rows)} table(s) of at least {minimum} rows "
                "(SCALING_AUDIT_LARGE_TABLE_ROWS); "
                f"none has more than {share:g} % of its scans sequential "
                "(pg_stat_user_tables, since the statistics were reset).",
                "",
                {"tables": rows},
            )
        ]
    return [
        Finding(
            f"sequential-scans:{row['table_name']}",
            WARNING,
            f"{row['table_name']} is read mostly by sequential scans",
            f"{row['table_name']}: {row['live_rows']} rows, {row['sequential_scans']} "
            f"sequential scans against {row['index_scans']} index scans "
            f"({row['sequential_percent']:g} % sequential, above {share:g} %), "
            f"{row['rows_read_sequentially']} rows read sequentially.",
            "Find the statements reading it (top statements) and index their filters, or "
            "bound them (pagination, a time range).",
            row,
        )
        for row in scanned
    ]
