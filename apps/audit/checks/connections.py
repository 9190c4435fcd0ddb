"""Connections and locks: the connection budget, pool waits and exhaustion, hot rows."""

import time

from django.conf import settings
from django.db import DatabaseError, connections
from django.db.models import Count, Max, Sum
from django.db.models.functions import TruncMinute

from apps.audit import database
from apps.audit.checks.queries import statements_schema
from apps.audit.report import CRITICAL, INFO, WARNING, Finding
from apps.common.database import all_pool_statistics, replica_aliases
from apps.observability.metrics import registry as metrics
from apps.observability.telemetry.models import ErrorGroup
from apps.orders.models import Order, OrderNumberSequence
from apps.profiling.models import QueryFinding

SERVER_LIMITS_SQL = """
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS superuser_reserved,
       COALESCE(NULLIF(current_setting('reserved_connections', true), ''), '0')::int AS reserved,
       (SELECT COUNT(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS in_use
"""


def connections_per_process(alias):
    """(connections one gunicorn process may hold on `alias`, how that was worked out)."""
    pool = connections[alias].settings_dict.get("OPTIONS", {}).get("pool")
    if isinstance(pool, dict):
        return pool["max_size"], f"{pool['max_size']} (DB_POOL_MAX_SIZE)"
    # Without the pool every thread keeps its own connection, and the flusher thread one more.
    threads = settings.GUNICORN_THREADS
    return threads + 1, f"{threads + 1} (GUNICORN_THREADS {threads} + the flusher, no pool)"


def _server_budget(scope, alias, label):
    per_process, per_process_text = connections_per_process(alias)
    demand = scope.instances * settings.WEB_CONCURRENCY * per_process
    (limits,) = database.fetch(SERVER_LIMITS_SQL, alias=alias)
    available = limits["max_connections"] - limits["superuser_reserved"] - limits["reserved"]
    arithmetic = (
        f"{scope.instances} instance(s) x {settings.WEB_CONCURRENCY} workers (WEB_CONCURRENCY) x "
        f"{per_process_text} = {demand} connections on {label}; max_connections "
        f"{limits['max_connections']} - {limits['superuser_reserved']} "
        f"superuser_reserved_connections - {limits['reserved']} reserved_connections = "
        f"{available} available; {limits['in_use']} client connections open now."
    )
    data = {
        "alias": alias,
        "instances": scope.instances,
        "workers": settings.WEB_CONCURRENCY,
        "per_process": per_process,
        "demand": demand,
        "max_connections": limits["max_connections"],
        "superuser_reserved": limits["superuser_reserved"],
        "reserved": limits["reserved"],
        "available": available,
        "in_use": limits["in_use"],
    }
    used_percent = 100 * demand / available if available > 0 else None
    data["used_percent"] = None if used_percent is None else round(used_percent, 1)
    identifier = "connection-budget" if alias == database.ALIAS else f"connection-budget:{alias}"
    if demand > available:
        most = max(available // (scope.instances * settings.WEB_CONCURRENCY), 0)
        return Finding(
            identifier,
            CRITICAL,
            f"The connection budget of {label} is exceeded",
            arithmetic,
            f"Lower DB_POOL_MAX_SIZE to at most {most}, run fewer workers or instances, raise "
            "max_connections, or put PgBouncer (transaction pooling) in front of PostgreSQL.",
            data,
        )
    if used_percent > settings.SCALING_AUDIT_CONNECTION_WARNING_PERCENT:
        return Finding(
            identifier,
            WARNING,
            f"The connection budget of {label} is {used_percent:.0f} % used",
            arithmetic,
            "Leave room for migrations, one-off commands and a rolling deploy's extra pods "
            f"(above {settings.SCALING_AUDIT_CONNECTION_WARNING_PERCENT:g} % warns: "
            "SCALING_AUDIT_CONNECTION_WARNING_PERCENT).",
            data,
        )
    return Finding(identifier, INFO, f"The connection budget of {label} fits", arithmetic, "", data)


def connection_budget(scope):
    if not database.is_postgres():
        return [
            Finding(
                "connection-budget",
                INFO,
                "No connection budget: SQLite has no server",
                f"{database.describe()}: every process opens the file itself; "
                f"{scope.instances} instance(s) x {settings.WEB_CONCURRENCY} workers.",
            )
        ]
    findings = [_server_budget(scope, database.ALIAS, "the primary")]
    for alias in replica_aliases():
        try:
            findings.append(_server_budget(scope, alias, f"replica {alias}"))
        except DatabaseError as error:
            findings.append(
                Finding(
                    f"connection-budget:{alias}",
                    WARNING,
                    f"The connection budget of replica {alias} could not be read",
                    f"{type(error).__name__}: {error}".strip(),
                    "Make the replica reachable; its state is under the replicas finding.",
                )
            )
    return findings


def _pool_timeouts(scope):
    """Error groups of requests that waited DB_POOL_TIMEOUT for a connection, in the window."""
    groups = ErrorGroup.objects.filter(last_seen__gte=scope.since).filter(
        exception_class__icontains="PoolTimeout"
    ) | ErrorGroup.objects.filter(
        last_seen__gte=scope.since, sample_message__icontains="couldn't get a connection"
    )
    return list(groups.order_by("-count"))


def _live_pool_gauges():
    """The pool gauges summed over the live gunicorn processes of this host (multiprocess)."""
    if not metrics.is_multiprocess():
        return None
    gauges = {}
    for family in metrics.registry().collect():
        if family.name.startswith("orders_db_pool_"):
            for sample in family.samples:
                alias = sample.labels.get("alias", "")
                gauges.setdefault(alias, {})[family.name.removeprefix("orders_db_pool_")] = (
                    sample.value
                )
    return gauges


def pool_waits(scope):
    timeouts = _pool_timeouts(scope)
    statistics = {alias: stats for alias, stats in all_pool_statistics().items() if stats}
    gauges = _live_pool_gauges()
    waited = {
        alias: {
            "requests": stats.get("requests_num", 0),
            "waiting_now": stats.get("requests_waiting", 0),
            "waited": stats.get("requests_queued", 0),
            "wait_ms": stats.get("requests_wait_ms", 0),
            "timeouts": stats.get("requests_errors", 0),
        }
        for alias, stats in statistics.items()
    }
    data = {"timeouts": len(timeouts), "process_pools": waited, "live_gauges": gauges}
    if timeouts:
        total = sum(group.count for group in timeouts)
        places = "; ".join(f"{group.route} ({group.count}x)" for group in timeouts[:5])
        return [
            Finding(
                "pool-exhaustion",
                CRITICAL,
                "Requests failed waiting for a pooled connection",
                f"{total} request(s) in the last {scope.minutes} min raised a pool timeout "
                f"(DB_POOL_TIMEOUT {settings.DB_POOL_TIMEOUT:g} s): {places}.",
                "Raise DB_POOL_MAX_SIZE within the connection budget, shorten the transactions "
                "that hold connections, or add instances.",
                {**data, "failed_requests": total},
            )
        ]
    waiting = sum(pool["waiting_now"] for pool in waited.values())
    if gauges:
        waiting += sum(values.get("requests_waiting", 0) for values in gauges.values())
    scope_text = (
        "this process's pools and the live gunicorn processes of this host"
        if gauges is not None
        else "this process's pools (the web processes' pools are exported as orders_db_pool_*)"
    )
    if waiting:
        return [
            Finding(
                "pool-waits",
                WARNING,
                "Requests are waiting for a pooled connection now",
                f"{waiting:g} waiting in {scope_text}; no pool timeout in the last "
                f"{scope.minutes} min.",
                "Every connection is busy: look at long transactions, or raise "
                "DB_POOL_MAX_SIZE within the connection budget.",
                data,
            )
        ]
    return [
        Finding(
            "pool-waits",
            INFO,
            "No pool timeout and no request waiting",
            f"No request raised a pool timeout in the last {scope.minutes} min (error groups); "
            f"none waiting in {scope_text}.",
            "",
            data,
        )
    ]


# A row lock is waited for on the holder's transaction id: the tables the waiting session has
# locked name what it was writing.
LOCK_WAITS_SQL = """
SELECT COALESCE(
           (SELECT string_agg(DISTINCT c.relname, ', ' ORDER BY c.relname)
            FROM pg_locks t JOIN pg_class c ON c.oid = t.relation
            WHERE t.pid = l.pid AND t.locktype = 'relation' AND c.relkind IN ('r', 'p')
              AND c.relnamespace <> 'pg_catalog'::regnamespace),
           l.locktype) AS relation,
       COUNT(*) AS waiting,
       MAX(EXTRACT(EPOCH FROM clock_timestamp() - a.query_start)) AS longest_seconds
FROM pg_locks l
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE NOT l.granted AND a.datname = current_database()
GROUP BY 1
"""
DEADLOCKS_SQL = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"


def sample_lock_waits(samples, interval):
    """Lock waits of this database, sampled `samples` times `interval` seconds apart."""
    worst = {}
    for number in range(samples):
        if number:
            time.sleep(interval)
        database.fetch("SELECT pg_stat_clear_snapshot()")
        for row in database.fetch(LOCK_WAITS_SQL):
            seen = worst.setdefault(row["relation"], {"waiting": 0, "longest_seconds": 0.0})
            seen["waiting"] = max(seen["waiting"], row["waiting"])
            seen["longest_seconds"] = max(seen["longest_seconds"], float(row["longest_seconds"]))
    return worst


def _sequence_statements():
    """pg_stat_statements' figures of the order-number UPDATE, or None without the extension."""
    schema = statements_schema()
    if schema is None:
        return None
    table = OrderNumberSequence._meta.db_table
    quoted = database.connection().ops.quote_name(schema)
    rows = database.fetch(
        f"SELECT SUM(calls) AS calls, SUM(total_exec_time) / NULLIF(SUM(calls), 0) AS mean_ms,"  # noqa: S608
        f" MAX(max_exec_time) AS max_ms FROM {quoted}.pg_stat_statements"
        " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND query ILIKE %s",
        (f"UPDATE %{table}%",),
    )
    if not rows or not rows[0]["calls"]:
        return {"calls": 0, "mean_ms": None, "max_ms": None}
    (row,) = rows
    return {
        "calls": int(row["calls"]),
        "mean_ms": float(row["mean_ms"]),
        "max_ms": float(row["max_ms"]),
    }


def _busiest_numbering(scope):
    """The most orders one organization was numbered in one minute of the window."""
    busiest = (
        Order.objects.filter(created_at__gte=scope.since)
        .annotate(minute=TruncMinute("created_at"))
        .values("organization_id", "minute")
        .annotate(orders=Count("id"))
        .order_by()
        .aggregate(most=Max("orders"))
    )
    return busiest["most"] or 0


def _slow_numbering(scope, table):
    """The query inspector's slow findings on the order-number row in the window: its waits."""
    return QueryFinding.objects.filter(
        kind=QueryFinding.Kind.SLOW, last_seen__gte=scope.since, sample_sql__icontains=table
    ).aggregate(occurrences=Sum("occurrences"), total_ms=Sum("total_ms"), max_ms=Max("max_ms"))


def _lock_waits(samples, interval):
    waits = sample_lock_waits(samples, interval)
    (deadlocks,) = database.fetch(DEADLOCKS_SQL)
    data = {"lock_waits": waits, "samples": samples, "deadlocks": deadlocks["deadlocks"]}
    sampled = (
        f"pg_locks sampled {samples} times over {samples * interval:.1f} s; "
        f"{deadlocks['deadlocks']} deadlocks since the statistics were reset"
    )
    if not waits:
        return waits, Finding(
            "lock-waits",
            INFO,
            "No session waited for a lock",
            f"{sampled}: no lock wait.",
            "",
            data,
        )
    listing = "; ".join(
        f"{relation}: {seen['waiting']} waiting, longest {seen['longest_seconds']:.2f} s"
        for relation, seen in sorted(waits.items())
    )
    return waits, Finding(
        "lock-waits",
        WARNING,
        "Sessions were waiting for locks",
        f"{sampled}: {listing}.",
        "Find the blocking transaction (Ops > Database, long-running statements) and keep "
        "transactions that lock shared rows short.",
        data,
    )


def hot_rows(scope):
    """Lock waits now, and the per-organization order-number row with its wait figures."""
    table = OrderNumberSequence._meta.db_table
    findings, figures = [], []
    waiting_now = 0
    if database.is_postgres():
        waits, lock_finding = _lock_waits(settings.SCALING_AUDIT_LOCK_SAMPLES, 0.2)
        findings.append(lock_finding)
        waiting_now = sum(seen["waiting"] for name, seen in waits.items() if table in name)
        figures.append(f"{waiting_now} session(s) waiting on it in the samples")
    per_minute = _busiest_numbering(scope)
    slow = _slow_numbering(scope, table)
    sequence = _sequence_statements() if database.is_postgres() else None
    threshold = settings.SCALING_AUDIT_HOT_ROW_WAIT_MS
    waited = []
    if slow["occurrences"]:
        figures.append(
            f"{slow['occurrences']} of its statements took LOG_SLOW_QUERY_MS "
            f"({settings.LOG_SLOW_QUERY_MS} ms) or more in sampled requests, slowest "
            f"{slow['max_ms']:.0f} ms, {slow['total_ms']:.0f} ms in total (query findings)"
        )
        waited.append("slow statements")
    if sequence is None:
        figures.append("pg_stat_statements is not installed: no mean time of its UPDATE")
    else:
        mean = sequence["mean_ms"]
        figures.append(
            f"its UPDATE ran {sequence['calls']} times, mean {mean or 0:.2f} ms, max "
            f"{sequence['max_ms'] or 0:.2f} ms, lock waits included (pg_stat_statements)"
        )
        if mean is not None and mean > threshold:
            waited.append(f"a mean UPDATE above SCALING_AUDIT_HOT_ROW_WAIT_MS ({threshold:g} ms)")
    if waiting_now:
        waited.append("sessions waiting on it")
    findings.append(
        Finding(
            "hot-row:order-number",
            WARNING if waited else INFO,
            "The per-organization order-number row"
            + (" is waited on" if waited else " serialises an organization's orders"),
            f"{table}: one row per organization, locked from numbering until the order's "
            f"transaction ends; at most {per_minute} orders of one organization in one minute of "
            f"the last {scope.minutes} min; " + "; ".join(figures) + ".",
            "Keep order creation's transaction short (number last, just before commit); past a "
            "few hundred orders a second for one organization, hand out numbers in blocks or "
            "from a PostgreSQL sequence per organization."
            if waited
            else "",
            {
                "table": table,
                "busiest_orders_per_minute": per_minute,
                "slow_statements": slow,
                "statements": sequence,
                "waiting_in_samples": waiting_now,
            },
        )
    )
    return findings
