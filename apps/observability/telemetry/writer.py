"""How a batch of request telemetry reaches the database: one transaction, additive upserts.

Every buffered row is added with one atomic upsert (INSERT ... ON CONFLICT DO UPDATE SET column =
column + excluded.column, on PostgreSQL and SQLite), so processes adding into the same minute row
never lose an update. The same transaction adds the rows, summed per 15 minutes, to the
RequestQuarterHour rollup that the ops dashboards read for long windows, so the two tables always
agree. Error groups are upserted the same way; slow requests are inserted up to their cap.
"""

import datetime as dt

from django.db import connections, router, transaction

from apps.common.database import greatest, least, upsert_sql
from apps.observability.telemetry.models import (
    ErrorGroup,
    RequestMinute,
    RequestQuarterHour,
    SlowRequest,
)
from apps.observability.telemetry.rows import (
    BUCKET_FIELDS,
    COUNTER_FIELDS,
    SLOW_REQUESTS_PER_ROUTE_MINUTE,
    as_datetime,
    minute_start,
    quarter_hour_start,
    roll_up,
)


def write_batch(batch):
    """One transaction: the minute rows and their quarter-hour rollup, the slow requests and the
    error groups, or nothing."""
    alias = router.db_for_write(RequestMinute)
    connection = connections[alias]
    with transaction.atomic(using=alias):
        with connection.cursor() as cursor:
            if batch.rows:
                for model, period_start in (
                    (RequestMinute, minute_start),
                    (RequestQuarterHour, quarter_hour_start),
                ):
                    upsert_request_statistics(
                        connection,
                        cursor,
                        model,
                        model.PERIOD_FIELD,
                        roll_up(batch.rows, period_start),
                    )
            if batch.errors:
                _upsert_error_groups(connection, cursor, ErrorGroup, batch.errors)
        if batch.slow_requests:
            _insert_slow_requests(alias, SlowRequest, batch.slow_requests)


def upsert_request_statistics(connection, cursor, model, period, rows, replace=False):
    """Add `rows`, keyed by (period start in epoch seconds, route, method), into the rows of a
    RequestStatistics model (RequestMinute or RequestQuarterHour, whose period-start column is
    `period`); `replace` overwrites them instead (the backfill, which computes whole periods)."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    value_columns = (*COUNTER_FIELDS, *BUCKET_FIELDS)
    columns = (period, "route", "method", *value_columns)
    assignments = []
    for column in value_columns:
        name = quote(column)
        if replace:
            expression = f"excluded.{name}"
        elif column == "duration_max_ms":
            expression = f"{greatest(connection)}({table}.{name}, excluded.{name})"
        else:
            expression = f"{table}.{name} + excluded.{name}"
        assignments.append(f"{name} = {expression}")
    sql = upsert_sql(connection, table, columns, (period, "route", "method"), assignments)
    adapt = connection.ops.adapt_datetimefield_value
    # A fixed order: concurrent flushes lock rows in the same order and cannot deadlock.
    parameters = [
        (adapt(as_datetime(start)), route, method, *values)
        for (start, route, method), values in sorted(rows.items())
    ]
    cursor.executemany(sql, parameters)


def _upsert_error_groups(connection, cursor, model, errors):
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = (
        "fingerprint",
        "exception_class",
        "frame",
        "route",
        "method",
        "count",
        "first_seen",
        "last_seen",
        "last_request_id",
        "sample_message",
        "status",
    )

    def newer(column):
        name = quote(column)
        return (
            f"{name} = CASE WHEN excluded.{quote('last_seen')} >= {table}.{quote('last_seen')} "
            f"THEN excluded.{name} ELSE {table}.{name} END"
        )

    last_seen = quote("last_seen")
    assignments = [
        f"{quote('count')} = {table}.{quote('count')} + excluded.{quote('count')}",
        f"{quote('first_seen')} = {least(connection)}"
        f"({table}.{quote('first_seen')}, excluded.{quote('first_seen')})",
        *(newer(column) for column in ("last_request_id", "sample_message", "route", "method")),
        f"{last_seen} = {greatest(connection)}({table}.{last_seen}, excluded.{last_seen})",
        # It happened again after someone resolved it: open again.
        f"{quote('status')} = CASE WHEN {table}.{quote('resolved_at')} IS NULL "
        f"OR excluded.{last_seen} > {table}.{quote('resolved_at')} "
        f"THEN excluded.{quote('status')} ELSE {table}.{quote('status')} END",
    ]
    sql = upsert_sql(connection, table, columns, ("fingerprint",), assignments)
    adapt = connection.ops.adapt_datetimefield_value
    parameters = [
        (
            occurrence.fingerprint,
            occurrence.exception_class,
            occurrence.frame,
            occurrence.route,
            occurrence.method,
            occurrence.count,
            adapt(dt.datetime.fromtimestamp(occurrence.first_seen, tz=dt.UTC)),
            adapt(dt.datetime.fromtimestamp(occurrence.last_seen, tz=dt.UTC)),
            occurrence.last_request_id,
            occurrence.sample_message,
            model.Status.OPEN,
        )
        for _, occurrence in sorted(errors.items())
    ]
    cursor.executemany(sql, parameters)


def _insert_slow_requests(alias, model, slow_requests):
    """Insert samples up to SLOW_REQUESTS_PER_ROUTE_MINUTE per route and minute, all processes
    together (the slowest first); processes flushing at the same moment may exceed it slightly."""
    objects = []
    for (minute, route), samples in sorted(slow_requests.items()):
        start = as_datetime(minute)
        stored = (
            model.objects.using(alias)
            .filter(
                route=route, started_at__gte=start, started_at__lt=start + dt.timedelta(minutes=1)
            )
            .count()
        )
        room = SLOW_REQUESTS_PER_ROUTE_MINUTE - stored
        for sample in sorted(samples, key=lambda sample: -sample.duration_ms)[: max(room, 0)]:
            objects.append(
                model(
                    started_at=dt.datetime.fromtimestamp(sample.started_at, tz=dt.UTC),
                    method=sample.method,
                    route=sample.route,
                    path=sample.path[:1000],
                    status=sample.status,
                    duration_ms=round(sample.duration_ms, 3),
                    query_count=sample.query_count,
                    db_time_ms=round(sample.db_time_ms, 3),
                    request_id=sample.request_id[:64],
                    user_id=sample.user_id,
                    organization_id=sample.organization_id,
                )
            )
    model.objects.using(alias).bulk_create(objects)
