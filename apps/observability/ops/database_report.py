"""What the ops database page shows: PostgreSQL's statistics views, or what SQLite can tell.

Each section is one query (or two on SQLite) against the catalogue and statistics views of the
primary database, whatever the number of tables, indexes or connections. A section that does
not apply to the database in use says why instead of showing nothing; one that fails (missing
privileges, say) shows the error and leaves the other sections alone.

pg_stat_statements (top statements by total time) is read only when it is both preloaded and
created in this database; otherwise the section says how to enable it.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError, connections, transaction

from apps.common import replicas
from apps.common.database import replica_aliases
from apps.observability.health import checks as health
from apps.observability.telemetry.statistics import percent

ALIAS = "default"
TOP_TABLES = 25
TOP_INDEXES = 25
TOP_STATEMENTS = 50
LONG_RUNNING_LIMIT = 20
QUERY_TEXT_LENGTH = 2000

ENABLE_STATEMENTS_STEPS = (
    "add pg_stat_statements to shared_preload_libraries in postgresql.conf "
    "(shared_preload_libraries = 'pg_stat_statements'), restart PostgreSQL, then run "
    "CREATE EXTENSION pg_stat_statements; in the service's database as a superuser."
)
ENABLE_STATEMENTS_HELP = f"To enable it: {ENABLE_STATEMENTS_STEPS}"


@dataclass
class Section:
    """One part of the report: rows with their columns, or a message saying why there are none."""

    applies: bool = True
    rows: list = field(default_factory=list)
    message: str = ""
    error: str = ""
    details: dict = field(default_factory=dict)

    @property
    def has_rows(self):
        return self.applies and not self.error and bool(self.rows)


def _fetch(cursor, sql, params=()):
    cursor.execute(sql, params)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _section(build, *args):
    """Run one section in its own savepoint: a failure rolls back only that section."""
    try:
        with transaction.atomic(using=ALIAS):
            return build(*args)
    except DatabaseError as error:
        return Section(error=f"{type(error).__name__}: {error}".strip())


def _pair(result):
    """Two sections built by one query, or the failure of that query twice."""
    return result if isinstance(result, tuple) else (result, result)


def long_running_seconds():
    """A statement running longer than a slow request may take is long-running."""
    return settings.LOG_SLOW_REQUEST_MS / 1000


# --- PostgreSQL ----------------------------------------------------------------------------------

CONNECTIONS_SQL = """
SELECT COALESCE(state, 'background') AS state,
       COUNT(*) AS connections,
       COUNT(*) FILTER (WHERE datname = current_database()) AS this_database,
       MAX(EXTRACT(EPOCH FROM clock_timestamp() - state_change)) AS longest_in_state_seconds,
       current_setting('max_connections')::int AS max_connections
FROM pg_stat_activity
WHERE backend_type = 'client backend'
GROUP BY 1
ORDER BY 2 DESC, 1
"""

# Only the service's own database: other databases on the server may belong to other services,
# and their statements are not this service's staff's to read.
LONG_RUNNING_SQL = """
SELECT pid, usename AS user_name, application_name, state,
       wait_event_type, wait_event,
       EXTRACT(EPOCH FROM clock_timestamp() - query_start) AS seconds,
       EXTRACT(EPOCH FROM clock_timestamp() - xact_start) AS transaction_seconds,
       LEFT(query, %s) AS query
FROM pg_stat_activity
WHERE backend_type = 'client backend'
  AND datname = current_database()
  AND state <> 'idle'
  AND pid <> pg_backend_pid()
  AND query_start < clock_timestamp() - make_interval(secs => %s)
ORDER BY query_start
LIMIT %s
"""

HIT_RATIO_SQL = """
SELECT d.blks_hit, d.blks_read,
       (SELECT SUM(heap_blks_hit) FROM pg_statio_user_tables) AS table_hit,
       (SELECT SUM(heap_blks_read) FROM pg_statio_user_tables) AS table_read,
       (SELECT SUM(idx_blks_hit) FROM pg_statio_user_indexes) AS index_hit,
       (SELECT SUM(idx_blks_read) FROM pg_statio_user_indexes) AS index_read,
       d.stats_reset
FROM pg_stat_database d
WHERE d.datname = current_database()
"""

TABLES_SQL = """
SELECT s.schemaname AS schema, s.relname AS table_name,
       pg_total_relation_size(s.relid) AS total_bytes,
       pg_relation_size(s.relid) AS table_bytes,
       pg_indexes_size(s.relid) AS index_bytes,
       s.n_live_tup AS live_rows, s.n_dead_tup AS dead_rows,
       s.seq_scan AS sequential_scans, s.idx_scan AS index_scans,
       GREATEST(s.last_autovacuum, s.last_vacuum) AS last_vacuum
FROM pg_stat_user_tables s
ORDER BY total_bytes DESC, table_name
LIMIT %s
"""

INDEXES_SQL = """
SELECT s.schemaname AS schema, s.relname AS table_name, s.indexrelname AS index_name,
       pg_relation_size(s.indexrelid) AS bytes, s.idx_scan AS scans,
       i.indisunique AS is_unique, i.indisprimary AS is_primary
FROM pg_stat_user_indexes s
JOIN pg_index i ON i.indexrelid = s.indexrelid
ORDER BY bytes DESC, index_name
"""

# A foreign key is covered when an index's leading columns are exactly its columns.
UNINDEXED_FOREIGN_KEYS_SQL = """
SELECT c.conrelid::regclass::text AS table_name,
       c.conname AS constraint_name,
       c.confrelid::regclass::text AS referenced_table,
       ARRAY(
           SELECT a.attname
           FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, position)
           JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
           ORDER BY k.position
       ) AS columns,
       pg_relation_size(c.conrelid) AS table_bytes
FROM pg_constraint c
JOIN pg_namespace n ON n.oid = c.connamespace
WHERE c.contype = 'f'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND NOT EXISTS (
      SELECT 1 FROM pg_index i
      WHERE i.indrelid = c.conrelid
        AND (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(c.conkey)]
            @> c.conkey
        AND cardinality(c.conkey) <= i.indnkeyatts
  )
ORDER BY table_bytes DESC, table_name, constraint_name
"""

STREAMING_REPLICAS_SQL = """
SELECT application_name, client_addr::text AS client_address, state, sync_state,
       EXTRACT(EPOCH FROM replay_lag) AS replay_lag_seconds,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) AS replay_lag_bytes
FROM pg_stat_replication
ORDER BY application_name
"""

STATEMENTS_STATE_SQL = """
SELECT current_setting('shared_preload_libraries') AS preload,
       current_setting('server_version_num')::int AS version,
       (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname = 'pg_stat_statements') AS schema
"""


def _postgres_connections(cursor):
    rows = _fetch(cursor, CONNECTIONS_SQL)
    maximum = rows[0]["max_connections"] if rows else None
    total = sum(row["connections"] for row in rows)
    return Section(rows=rows, details={"total": total, "max_connections": maximum})


def _postgres_long_running(cursor):
    seconds = long_running_seconds()
    rows = _fetch(cursor, LONG_RUNNING_SQL, (QUERY_TEXT_LENGTH, seconds, LONG_RUNNING_LIMIT))
    return Section(
        rows=rows,
        message=(
            f"No statement has been running for more than {seconds:g} s "
            "(LOG_SLOW_REQUEST_MS) in this database."
        ),
        details={"threshold_seconds": seconds},
    )


def _hit_percent(hit, read):
    hit, read = int(hit or 0), int(read or 0)
    return percent(hit, hit + read, 2)


def _postgres_hit_ratio(cursor):
    (row,) = _fetch(cursor, HIT_RATIO_SQL)
    return Section(
        rows=[
            {
                "scope": "database (all reads)",
                "ratio": _hit_percent(row["blks_hit"], row["blks_read"]),
            },
            {"scope": "tables", "ratio": _hit_percent(row["table_hit"], row["table_read"])},
            {"scope": "indexes", "ratio": _hit_percent(row["index_hit"], row["index_read"])},
        ],
        details={"stats_reset": row["stats_reset"]},
        message="Below 99 % on a busy OLTP database usually means shared_buffers is too small.",
    )


def _postgres_tables(cursor):
    return Section(rows=_fetch(cursor, TABLES_SQL, (TOP_TABLES,)))


def _postgres_indexes(cursor):
    rows = _fetch(cursor, INDEXES_SQL)
    unused = [
        row for row in rows if row["scans"] == 0 and not row["is_unique"] and not row["is_primary"]
    ]
    return (
        Section(rows=rows[:TOP_INDEXES]),
        Section(
            rows=unused,
            message="Every index that is not unique has been used since statistics were reset.",
            details={
                "note": "Counted on this server since its statistics were last reset; an index "
                "may still serve queries on a read replica."
            },
        ),
    )


def _postgres_unindexed_foreign_keys(cursor):
    return Section(
        rows=_fetch(cursor, UNINDEXED_FOREIGN_KEYS_SQL),
        message="Every foreign key has an index starting with its columns.",
    )


def _replica_lag(cursor):
    """Configured replicas, measured now (in rotation, lagging or down, as reads are routed),
    and the standbys streaming from this server."""
    aliases = replica_aliases()
    results = health.run_checks([health.ReplicaCheck(alias) for alias in aliases])
    states = replicas.replica_states()
    configured = [
        {
            "alias": result.name,
            "status": result.status,
            "state": states[result.name].state.replace("_", " "),
            "message": result.message,
            "lag_seconds": states[result.name].lag_seconds,
        }
        for result in results
    ]
    streaming = _fetch(cursor, STREAMING_REPLICAS_SQL)
    message = ""
    if not configured and not streaming:
        message = (
            "No read replica is configured (DATABASE_REPLICA_URLS) and no standby streams from "
            "this server."
        )
    details = {"streaming": streaming, "lag_limit_seconds": settings.DB_REPLICA_MAX_LAG_SECONDS}
    return Section(rows=configured, details=details, message=message)


def statements(cursor, limit=TOP_STATEMENTS):
    """Top statements of this database by total execution time, from pg_stat_statements."""
    (state,) = _fetch(cursor, STATEMENTS_STATE_SQL)
    preloaded = "pg_stat_statements" in [
        name.strip() for name in (state["preload"] or "").split(",")
    ]
    schema = state["schema"]
    if not preloaded or schema is None:
        if preloaded:
            problem = "pg_stat_statements is loaded, but the extension is not created here."
        elif schema is not None:
            problem = (
                "The pg_stat_statements extension exists, but the server does not load it "
                "(it is missing from shared_preload_libraries)."
            )
        else:
            problem = "pg_stat_statements is not enabled on this server."
        return Section(applies=False, message=f"{problem} {ENABLE_STATEMENTS_HELP}")
    # The column names changed in PostgreSQL 13 (total_time → total_exec_time).
    time_column = "exec_time" if state["version"] >= 130000 else "time"
    quoted = connections[ALIAS].ops.quote_name(schema)
    sql = (
        f"SELECT s.queryid::text AS query_id, s.calls, s.rows,"  # noqa: S608 - names from catalogue
        f" s.total_{time_column} AS total_ms, s.mean_{time_column} AS mean_ms,"
        f" s.max_{time_column} AS max_ms,"
        f" 100 * s.total_{time_column} / NULLIF(SUM(s.total_{time_column}) OVER (), 0)"
        f" AS share_percent,"
        f" s.shared_blks_hit AS blocks_hit, s.shared_blks_read AS blocks_read,"
        f" LEFT(s.query, %s) AS query"
        f" FROM {quoted}.pg_stat_statements s"
        f" WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        f" ORDER BY s.total_{time_column} DESC LIMIT %s"
    )
    return Section(
        rows=_fetch(cursor, sql, (QUERY_TEXT_LENGTH, limit)),
        message="pg_stat_statements has recorded no statement in this database yet.",
        details={"schema": schema},
    )


def postgres_report(cursor, statement_limit):
    # Statistics views are read from a snapshot taken once per transaction: inside a longer
    # transaction, take a new one so that the page shows the server as it is now.
    cursor.execute("SELECT pg_stat_clear_snapshot()")
    indexes, unused = _pair(_section(_postgres_indexes, cursor))
    return {
        "connections": _section(_postgres_connections, cursor),
        "long_running": _section(_postgres_long_running, cursor),
        "hit_ratio": _section(_postgres_hit_ratio, cursor),
        "tables": _section(_postgres_tables, cursor),
        "indexes": indexes,
        "unused_indexes": unused,
        "unindexed_foreign_keys": _section(_postgres_unindexed_foreign_keys, cursor),
        "replicas": _section(_replica_lag, cursor),
        "statements": _section(statements, cursor, statement_limit),
    }


# --- SQLite --------------------------------------------------------------------------------------

SQLITE_FILE_SQL = """
SELECT (SELECT page_count FROM pragma_page_count()) AS page_count,
       (SELECT page_size FROM pragma_page_size()) AS page_size,
       (SELECT freelist_count FROM pragma_freelist_count()) AS freelist_count,
       (SELECT journal_mode FROM pragma_journal_mode()) AS journal_mode
"""

# dbstat is a virtual table of SQLite builds with SQLITE_ENABLE_DBSTAT_VTAB (Debian's has it).
SQLITE_SIZES_SQL = """
SELECT m.type AS type, m.name AS name, m.tbl_name AS table_name, SUM(d.pgsize) AS bytes
FROM sqlite_master m JOIN dbstat d ON d.name = m.name
WHERE m.type IN ('table', 'index')
GROUP BY m.type, m.name, m.tbl_name
ORDER BY bytes DESC, m.name
"""

SQLITE_FOREIGN_KEYS_SQL = """
SELECT m.name AS table_name, f.id AS key_id, f.seq AS position, f."table" AS referenced_table,
       f."from" AS column_name
FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f
WHERE m.type = 'table'
ORDER BY m.name, f.id, f.seq
"""

SQLITE_INDEX_COLUMNS_SQL = """
SELECT m.name AS table_name, l.name AS index_name, i.seqno AS position, i.name AS column_name
FROM sqlite_master m
JOIN pragma_index_list(m.name) l
JOIN pragma_index_info(l.name) i
WHERE m.type = 'table'
UNION ALL
-- An INTEGER PRIMARY KEY is the rowid: the table's own B-tree indexes it, no index is listed.
SELECT m.name, 'primary key', p.pk - 1, p.name
FROM sqlite_master m JOIN pragma_table_info(m.name) p
WHERE m.type = 'table' AND p.pk > 0
ORDER BY 1, 2, 3
"""


def _sqlite_file(cursor):
    (row,) = _fetch(cursor, SQLITE_FILE_SQL)
    return Section(
        details={
            "bytes": row["page_count"] * row["page_size"],
            "free_bytes": row["freelist_count"] * row["page_size"],
            "journal_mode": row["journal_mode"],
            "name": str(connections[ALIAS].settings_dict["NAME"]),
        }
    )


def _sqlite_sizes(cursor):
    rows = _fetch(cursor, SQLITE_SIZES_SQL)
    tables = {}
    for row in rows:
        table = tables.setdefault(
            row["table_name"],
            {"table_name": row["table_name"], "table_bytes": 0, "index_bytes": 0},
        )
        table["table_bytes" if row["type"] == "table" else "index_bytes"] += row["bytes"]
    for table in tables.values():
        table["total_bytes"] = table["table_bytes"] + table["index_bytes"]
    ordered = sorted(
        tables.values(), key=lambda table: (-table["total_bytes"], table["table_name"])
    )
    indexes = [
        {"table_name": row["table_name"], "index_name": row["name"], "bytes": row["bytes"]}
        for row in rows
        if row["type"] == "index"
    ]
    return Section(rows=ordered[:TOP_TABLES]), Section(rows=indexes[:TOP_INDEXES])


def _sqlite_unindexed_foreign_keys(cursor):
    keys = {}
    for row in _fetch(cursor, SQLITE_FOREIGN_KEYS_SQL):
        key = keys.setdefault(
            (row["table_name"], row["key_id"]),
            {
                "table_name": row["table_name"],
                "constraint_name": f"foreign key #{row['key_id']}",
                "referenced_table": row["referenced_table"],
                "columns": [],
            },
        )
        key["columns"].append(row["column_name"])
    leading = {}
    for row in _fetch(cursor, SQLITE_INDEX_COLUMNS_SQL):
        leading.setdefault((row["table_name"], row["index_name"]), []).append(row["column_name"])
    rows = []
    for (table_name, _), key in sorted(keys.items()):
        width = len(key["columns"])
        covered = any(
            index_table == table_name and set(columns[:width]) == set(key["columns"])
            for (index_table, _), columns in leading.items()
        )
        if not covered:
            rows.append(key)
    return Section(rows=rows, message="Every foreign key has an index starting with its columns.")


def _not_on_sqlite(what):
    return Section(applies=False, message=f"{what} Run the service on PostgreSQL to see it.")


def sqlite_report(cursor):
    tables, indexes = _pair(_section(_sqlite_sizes, cursor))
    return {
        "file": _section(_sqlite_file, cursor),
        "connections": _not_on_sqlite(
            "SQLite has no server: each process opens the database file itself, so there are no "
            "connection states to show."
        ),
        "long_running": _not_on_sqlite("SQLite does not expose running statements."),
        "hit_ratio": _not_on_sqlite("SQLite keeps no buffer cache statistics."),
        "tables": tables,
        "indexes": indexes,
        "unused_indexes": _not_on_sqlite("SQLite does not count index scans."),
        "unindexed_foreign_keys": _section(_sqlite_unindexed_foreign_keys, cursor),
        "replicas": _not_on_sqlite("Read replicas need PostgreSQL (DATABASE_REPLICA_URLS)."),
        "statements": sqlite_statements(),
    }


def vendor():
    return connections[ALIAS].vendor


def report(statement_limit=10):
    """Every section for the primary database, keyed by name, plus its vendor."""
    connection = connections[ALIAS]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sections = postgres_report(cursor, statement_limit)
        else:
            sections = sqlite_report(cursor)
    return {"vendor": connection.vendor, **sections}


def statements_report(limit=TOP_STATEMENTS):
    """The top statements section alone (its own page lists more of them)."""
    connection = connections[ALIAS]
    if connection.vendor != "postgresql":
        return sqlite_statements()
    with connection.cursor() as cursor:
        return _section(statements, cursor, limit)


def sqlite_statements():
    return Section(
        applies=False,
        message="Top statements come from PostgreSQL's pg_stat_statements; SQLite has no "
        f"equivalent. On PostgreSQL, {ENABLE_STATEMENTS_STEPS}",
    )
