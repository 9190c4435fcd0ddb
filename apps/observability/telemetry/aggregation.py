"""Request telemetry: the in-process aggregator and how its buffer reaches the database.

TelemetryMiddleware calls `record_request` once per request. The aggregator adds the request to a
row keyed by (minute, route, method) under a lock: a few additions in memory, no I/O. The flusher
(apps/common/flusher.py) calls `flush_telemetry` every TELEMETRY_FLUSH_SECONDS and when
the worker exits; it writes every buffered row with one atomic upsert (INSERT ... ON CONFLICT DO
UPDATE SET column = column + excluded.column, on PostgreSQL and SQLite), so processes adding into
the same minute row never lose an update. The same transaction adds the rows, summed per 15
minutes, to the RequestQuarterHour rollup that the ops dashboards read for long windows, so the two
tables always agree. When the write fails the buffer is kept (bounded: the oldest minutes are
dropped and counted) and written by the next flush.

Latencies go into a fixed histogram (LATENCY_BUCKET_BOUNDS_MS, about 25 % apart), which keeps
percentiles summable across processes and exact to within one bucket.
"""

import bisect
import datetime as dt
import hashlib
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connections, router, transaction

from apps.common.redaction import redact_text
from apps.common.request_context import route_template
from apps.observability.logging.formatting import get_logger
from apps.observability.metrics import registry as metrics

logger = get_logger(__name__)

# Upper bounds (ms, inclusive) of the latency buckets; one more bucket counts what is slower.
LATENCY_BUCKET_BOUNDS_MS = (
    *(0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8),
    *(10, 12, 15, 20, 25, 30, 40, 50, 60, 80),
    *(100, 120, 150, 200, 250, 300, 400, 500, 600, 800),
    *(1000, 1200, 1500, 2000, 2500, 3000, 4000, 5000, 6000, 8000),
    *(10000, 15000, 20000, 30000, 60000),
)
BUCKET_COUNT = len(LATENCY_BUCKET_BOUNDS_MS) + 1
BUCKET_FIELDS = tuple(f"bucket_{index:02d}" for index in range(BUCKET_COUNT))

# Slots of a buffered row, in the order of COUNTER_FIELDS, then the buckets.
COUNTER_FIELDS = (
    "requests",
    "status_2xx",
    "status_3xx",
    "status_4xx",
    "status_5xx",
    "slow",
    "duration_sum_ms",
    "duration_max_ms",
    "query_count",
    "db_time_ms",
)
REQUESTS, STATUS_2XX, _, _, STATUS_5XX, SLOW, DURATION_SUM, DURATION_MAX, QUERIES, DB_TIME = range(
    len(COUNTER_FIELDS)
)
FIRST_BUCKET = len(COUNTER_FIELDS)
ROW_WIDTH = FIRST_BUCKET + BUCKET_COUNT

ONE_MINUTE = dt.timedelta(minutes=1)
QUARTER_HOUR_SECONDS = 15 * 60
UNMATCHED_ROUTE = "<unmatched>"
ROUTE_LENGTH = 255  # the route columns' width: a longer value would fail every flush
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})

# Bounds of the buffer, so that a database outage cannot grow a process without limit.
MAX_BUFFERED_MINUTES = 60
SLOW_REQUESTS_PER_ROUTE_MINUTE = 10
MAX_BUFFERED_ERROR_GROUPS = 500
SAMPLE_MESSAGE_LENGTH = 500
PROJECT_DIRECTORIES = tuple(
    str(Path(settings.BASE_DIR) / name) + os.sep for name in ("apps", "project")
)


def bucket_index(duration_ms):
    """Index of the bucket counting `duration_ms`: the first bound it does not exceed."""
    return bisect.bisect_left(LATENCY_BUCKET_BOUNDS_MS, duration_ms)


def bucket_range(index):
    """(lower, upper) bound in ms of a bucket; the last one is open-ended (upper None)."""
    lower = LATENCY_BUCKET_BOUNDS_MS[index - 1] if index > 0 else 0.0
    upper = LATENCY_BUCKET_BOUNDS_MS[index] if index < len(LATENCY_BUCKET_BOUNDS_MS) else None
    return float(lower), upper


def percentile_from_buckets(counts, fraction, maximum=None):
    """The `fraction` percentile (0.95 for p95) of a histogram, interpolated in its bucket.

    The estimate lies in the bucket holding the true percentile. `maximum`, the largest duration
    seen, bounds the estimate and stands in for the open-ended last bucket.
    """
    total = sum(counts)
    if total == 0:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            lower, upper = bucket_range(index)
            if upper is None:
                return round(maximum if maximum is not None else lower, 2)
            estimate = lower + (upper - lower) * (rank - seen) / count
            if maximum is not None:
                estimate = min(estimate, maximum)
            return round(estimate, 2)
        seen += count
    return round(maximum, 2) if maximum is not None else None


def minute_start(timestamp):
    return int(timestamp // 60) * 60


def quarter_hour_start(timestamp):
    return int(timestamp // QUARTER_HOUR_SECONDS) * QUARTER_HOUR_SECONDS


def as_datetime(minute):
    return dt.datetime.fromtimestamp(minute, tz=dt.UTC)


def route_label(resolver_match):
    """The URL pattern as the request logs show it (`/api/v1/orders/<int:pk>/`); one fixed
    label for paths that matched nothing, so that random paths cannot grow the statistics."""
    return (route_template(resolver_match) or UNMATCHED_ROUTE)[:ROUTE_LENGTH]


def normalise_method(method):
    return method if method in KNOWN_METHODS else "OTHER"


@dataclass
class SlowRequestSample:
    started_at: float
    method: str
    route: str
    path: str
    status: int
    duration_ms: float
    query_count: int
    db_time_ms: float
    request_id: str = ""
    user_id: int | None = None
    organization_id: int | None = None


@dataclass
class ErrorOccurrence:
    fingerprint: str
    exception_class: str
    frame: str
    route: str
    method: str
    count: int
    first_seen: float
    last_seen: float
    last_request_id: str
    sample_message: str


@dataclass
class Batch:
    """What one flush writes; given back to the aggregator when the write fails."""

    rows: dict = field(default_factory=dict)
    slow_requests: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)

    def is_empty(self):
        return not (self.rows or self.slow_requests or self.errors)


class Aggregator:
    """This process's statistics not yet written, and its per-minute summary for the log."""

    def __init__(self):
        self._lock = threading.Lock()
        self._batch = Batch()
        self._summaries = {}

    def record(self, minute, route, method, status, duration_ms, query_count, db_time_ms, slow):
        index = FIRST_BUCKET + bucket_index(duration_ms)
        # 2xx..5xx; the rare 1xx is counted with 2xx, so that the classes add up to `requests`.
        status_slot = STATUS_2XX + min(max(status // 100 - 2, 0), 3)
        with self._lock:
            rows = self._batch.rows
            row = rows.get((minute, route, method))
            if row is None:
                row = rows[(minute, route, method)] = [0] * ROW_WIDTH
                self._drop_beyond_cap()
            row[REQUESTS] += 1
            row[status_slot] += 1
            row[DURATION_SUM] += duration_ms
            if duration_ms > row[DURATION_MAX]:
                row[DURATION_MAX] = duration_ms
            row[QUERIES] += query_count
            row[DB_TIME] += db_time_ms
            row[index] += 1
            summary = self._summaries.get(minute)
            if summary is None:
                summary = self._summaries[minute] = [0] * ROW_WIDTH
                while len(self._summaries) > MAX_BUFFERED_MINUTES:
                    del self._summaries[min(self._summaries)]
            summary[REQUESTS] += 1
            summary[DURATION_SUM] += duration_ms
            summary[index] += 1
            if status >= 500:
                summary[STATUS_5XX] += 1
            if slow:
                row[SLOW] += 1
                summary[SLOW] += 1

    def add_slow_request(self, sample):
        key = (minute_start(sample.started_at), sample.route)
        with self._lock:
            samples = self._batch.slow_requests.setdefault(key, [])
            if len(samples) < SLOW_REQUESTS_PER_ROUTE_MINUTE:
                samples.append(sample)

    def add_error(self, occurrence):
        with self._lock:
            errors = self._batch.errors
            known = errors.get(occurrence.fingerprint)
            if known is None:
                if len(errors) >= MAX_BUFFERED_ERROR_GROUPS:
                    return
                errors[occurrence.fingerprint] = occurrence
                return
            _merge_error(known, occurrence)

    def take(self):
        """The buffer, leaving an empty one in its place."""
        with self._lock:
            batch, self._batch = self._batch, Batch()
            return batch

    def put_back(self, batch):
        """Merge a batch that could not be written into what arrived since."""
        with self._lock:
            rows = self._batch.rows
            for key, values in batch.rows.items():
                row = rows.get(key)
                if row is None:
                    rows[key] = values
                else:
                    add_row(row, values)
            for key, samples in batch.slow_requests.items():
                kept = self._batch.slow_requests.setdefault(key, [])
                kept[:0] = samples[: max(SLOW_REQUESTS_PER_ROUTE_MINUTE - len(kept), 0)]
            for fingerprint, occurrence in batch.errors.items():
                known = self._batch.errors.get(fingerprint)
                if known is None:
                    self._batch.errors[fingerprint] = occurrence
                else:
                    _merge_error(known, occurrence)
            self._drop_beyond_cap()

    def _drop_beyond_cap(self):
        """Drop the oldest minutes beyond MAX_BUFFERED_MINUTES; called with the lock held."""
        batch = self._batch
        minutes = {minute for minute, _, _ in batch.rows}
        if len(minutes) <= MAX_BUFFERED_MINUTES:
            return
        oldest = sorted(minutes)[: len(minutes) - MAX_BUFFERED_MINUTES]
        dropped = 0
        for key in [key for key in batch.rows if key[0] in oldest]:
            dropped += batch.rows.pop(key)[REQUESTS]
        for key in [key for key in batch.slow_requests if key[0] in oldest]:
            del batch.slow_requests[key]
        metrics.TELEMETRY_DROPPED_REQUESTS.inc(dropped)
        logger.warning("telemetry_buffer_full", dropped_requests=dropped, minutes=len(oldest))

    def take_summaries(self, before_minute=None):
        """Per-minute summaries of minutes before `before_minute` (all when None), removed."""
        with self._lock:
            finished = sorted(
                minute
                for minute in self._summaries
                if before_minute is None or minute < before_minute
            )
            return [(minute, self._summaries.pop(minute)) for minute in finished]

    def pending_requests(self):
        with self._lock:
            return sum(row[REQUESTS] for row in self._batch.rows.values())


def add_row(row, values):
    """Add one buffered row's values into another (the maximum of their maxima)."""
    for slot, value in enumerate(values):
        if slot == DURATION_MAX:
            row[slot] = max(row[slot], value)
        else:
            row[slot] += value


def roll_up(rows, period_start):
    """Buffered rows keyed by (minute, route, method) summed per (period_start(minute), ...)."""
    rolled = {}
    for (minute, route, method), values in rows.items():
        key = (period_start(minute), route, method)
        row = rolled.get(key)
        if row is None:
            rolled[key] = list(values)
        else:
            add_row(row, values)
    return rolled


def _merge_error(known, occurrence):
    known.count += occurrence.count
    if occurrence.last_seen >= known.last_seen:
        known.last_seen = occurrence.last_seen
        known.last_request_id = occurrence.last_request_id
        known.sample_message = occurrence.sample_message
        known.route = occurrence.route
        known.method = occurrence.method
    known.first_seen = min(known.first_seen, occurrence.first_seen)


aggregator = Aggregator()


def _reset_after_fork():
    """A forked child starts with an empty buffer: what the parent buffered is the parent's."""
    global aggregator
    aggregator = Aggregator()


os.register_at_fork(after_in_child=_reset_after_fork)


def record_request(
    *,
    route,
    method,
    status,
    duration_ms,
    query_count=0,
    db_time_ms=0.0,
    slow=False,
    started_at=None,
):
    """Add one request to this process's statistics (O(1), in memory)."""
    started_at = time.time() if started_at is None else started_at
    aggregator.record(
        minute_start(started_at),
        route,
        normalise_method(method),
        status,
        duration_ms,
        query_count,
        db_time_ms,
        slow,
    )


def record_slow_request(sample):
    aggregator.add_slow_request(sample)


def record_error(exception, *, route, method, request_id="", at=None):
    """Count a 5xx's exception in its group: exception class + innermost project frame."""
    at = time.time() if at is None else at
    exception_class = f"{type(exception).__module__}.{type(exception).__qualname__}"
    frame = innermost_project_frame(exception)
    fingerprint = hashlib.sha256(f"{exception_class}|{frame}".encode()).hexdigest()[:40]
    aggregator.add_error(
        ErrorOccurrence(
            fingerprint=fingerprint,
            exception_class=exception_class[:255],
            frame=frame[:500],
            route=route,
            method=normalise_method(method),
            count=1,
            first_seen=at,
            last_seen=at,
            last_request_id=(request_id or "")[:64],
            sample_message=sample_message(exception),
        )
    )


def innermost_project_frame(exception):
    """`apps/orders/services.py in create_order` for the deepest frame in the project's code.

    Line numbers are left out: they move with every edit, and the group must not.
    """
    innermost = None
    innermost_project = None
    traceback = exception.__traceback__
    while traceback is not None:
        code = traceback.tb_frame.f_code
        innermost = code
        if code.co_filename.startswith(PROJECT_DIRECTORIES):
            innermost_project = code
        traceback = traceback.tb_next
    code = innermost_project or innermost
    if code is None:
        return "<no traceback>"
    filename = code.co_filename
    if filename.startswith(str(settings.BASE_DIR)):
        filename = os.path.relpath(filename, settings.BASE_DIR)
    return f"{filename} in {code.co_name}"


def sample_message(exception):
    """The exception's message, secrets redacted, on one line, at most 500 characters."""
    message = redact_text(" ".join(str(exception).split()))
    if len(message) > SAMPLE_MESSAGE_LENGTH:
        message = message[: SAMPLE_MESSAGE_LENGTH - 1] + "…"
    return message


# --- Writing -----------------------------------------------------------------------------------

_flush_lock = threading.Lock()


def flush_telemetry():
    """Write this process's buffer; returns the number of requests written.

    Never raises: on failure the buffer is kept for the next flush, and the failure is logged and
    counted (orders_telemetry_flush_failures_total).
    """
    with _flush_lock:
        batch = aggregator.take()
        if batch.is_empty():
            return 0
        try:
            write_batch(batch)
        except Exception:
            aggregator.put_back(batch)
            metrics.TELEMETRY_FLUSH_FAILURES.inc()
            logger.warning(
                "telemetry_flush_failed",
                exc_info=True,
                buffered_requests=aggregator.pending_requests(),
            )
            return 0
        return sum(row[REQUESTS] for row in batch.rows.values())


def write_batch(batch):
    """One transaction: the minute rows and their quarter-hour rollup, the slow requests and the
    error groups, or nothing."""
    from apps.observability.telemetry.models import (
        ErrorGroup,
        RequestMinute,
        RequestQuarterHour,
        SlowRequest,
    )

    alias = router.db_for_write(RequestMinute)
    connection = connections[alias]
    with transaction.atomic(using=alias):
        with connection.cursor() as cursor:
            if batch.rows:
                for model, period_start in (
                    (RequestMinute, minute_start),
                    (RequestQuarterHour, quarter_hour_start),
                ):
                    _upsert_request_statistics(
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


def _greatest(connection):
    return "GREATEST" if connection.vendor == "postgresql" else "MAX"


def _least(connection):
    return "LEAST" if connection.vendor == "postgresql" else "MIN"


def _upsert_sql(connection, table, columns, conflict_columns, assignments):
    """INSERT ... ON CONFLICT DO UPDATE, the same statement on PostgreSQL and SQLite.

    Names come from the models, never from input; values are passed as parameters.
    """
    quote = connection.ops.quote_name
    return (
        f"INSERT INTO {table} ({', '.join(quote(column) for column in columns)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({', '.join(quote(column) for column in conflict_columns)}) "
        f"DO UPDATE SET {', '.join(assignments)}"
    )


def _upsert_request_statistics(connection, cursor, model, period, rows, replace=False):
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
            expression = f"{_greatest(connection)}({table}.{name}, excluded.{name})"
        else:
            expression = f"{table}.{name} + excluded.{name}"
        assignments.append(f"{name} = {expression}")
    sql = _upsert_sql(connection, table, columns, (period, "route", "method"), assignments)
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
        f"{quote('first_seen')} = {_least(connection)}"
        f"({table}.{quote('first_seen')}, excluded.{quote('first_seen')})",
        *(newer(column) for column in ("last_request_id", "sample_message", "route", "method")),
        f"{last_seen} = {_greatest(connection)}({table}.{last_seen}, excluded.{last_seen})",
        # It happened again after someone resolved it: open again.
        f"{quote('status')} = CASE WHEN {table}.{quote('resolved_at')} IS NULL "
        f"OR excluded.{last_seen} > {table}.{quote('resolved_at')} "
        f"THEN excluded.{quote('status')} ELSE {table}.{quote('status')} END",
    ]
    sql = _upsert_sql(connection, table, columns, ("fingerprint",), assignments)
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


# --- Filling the rollup from stored minutes ----------------------------------------------------

BACKFILL_BATCH = dt.timedelta(hours=6)


def backfill_quarter_hours(minute_model=None, quarter_hour_model=None, using=None):
    """Compute the RequestQuarterHour rows from the stored RequestMinute rows.

    For the minutes stored before the rollup existed (migration 0003, and bench/ops_overview.py);
    the models are parameters so that a migration can pass its historical ones. One SQL
    aggregation per BACKFILL_BATCH of minutes, aligned to quarter hours, each written in its own
    transaction; a quarter hour's row is replaced by the sum of its minutes, so running it again
    changes nothing. Run it while no flusher writes the rollup (a deployment migrates before the
    new code starts): a flush landing between a batch's read and write would not be counted in
    that batch's quarter hours. Returns the number of quarter-hour rows written.
    """
    from django.db.models import Max, Min

    from apps.observability.ops.queries import BucketStart
    from apps.observability.telemetry.statistics import aggregates

    if minute_model is None or quarter_hour_model is None:
        from apps.observability.telemetry.models import RequestMinute, RequestQuarterHour

        minute_model, quarter_hour_model = RequestMinute, RequestQuarterHour
    using = using or router.db_for_write(quarter_hour_model)
    connection = connections[using]
    minutes = minute_model.objects.using(using)
    bounds = minutes.aggregate(first=Min("minute"), last=Max("minute"))
    if bounds["first"] is None:
        return 0
    step = int(BACKFILL_BATCH.total_seconds())
    start = quarter_hour_start(bounds["first"].timestamp())
    end = bounds["last"].timestamp()
    written = 0
    while start <= end:
        groups = (
            minutes.filter(minute__gte=as_datetime(start), minute__lt=as_datetime(start + step))
            .order_by()
            .values("route", "method", period=BucketStart("minute", QUARTER_HOUR_SECONDS))
            .annotate(**aggregates())
        )
        rows = {
            (group["period"], group["route"], group["method"]): [
                group[name] or 0 for name in (*COUNTER_FIELDS, *BUCKET_FIELDS)
            ]
            for group in groups
        }
        if rows:
            with transaction.atomic(using=using), connection.cursor() as cursor:
                _upsert_request_statistics(
                    connection, cursor, quarter_hour_model, "quarter_hour", rows, replace=True
                )
            written += len(rows)
        start += step
    return written


# --- Minute summary ----------------------------------------------------------------------------


def log_minute_summaries(before_minute=None):
    """One log line per finished minute of this process: requests, latency, error/slow rates."""
    for minute, summary in aggregator.take_summaries(before_minute):
        requests = summary[REQUESTS]
        if not requests:
            continue
        logger.info(
            "request_minute_summary",
            minute=as_datetime(minute).isoformat(),
            requests=requests,
            latency_avg_ms=round(summary[DURATION_SUM] / requests, 2),
            latency_p95_ms=percentile_from_buckets(summary[FIRST_BUCKET:], 0.95),
            error_rate=round(summary[STATUS_5XX] / requests, 4),
            slow_rate=round(summary[SLOW] / requests, 4),
        )


# --- Retention ---------------------------------------------------------------------------------

PRUNE_BATCH_SIZE = 1000


def prune_telemetry(retention_days, batch_size=PRUNE_BATCH_SIZE, now=None):
    """Delete statistics (minutes and quarter hours), slow requests and error groups older than
    `retention_days`.

    In batches of `batch_size` rows, each its own short transaction, so that pruning a large
    backlog never holds locks the flusher waits for. Returns the number deleted per model.
    """
    from apps.observability.telemetry.models import (
        ErrorGroup,
        RequestMinute,
        RequestQuarterHour,
        SlowRequest,
    )

    now = dt.datetime.now(tz=dt.UTC) if now is None else now
    cutoff = now - dt.timedelta(days=retention_days)
    deleted = {}
    for model, timestamp in (
        (RequestMinute, "minute"),
        (RequestQuarterHour, "quarter_hour"),
        (SlowRequest, "started_at"),
        (ErrorGroup, "last_seen"),
    ):
        alias = router.db_for_write(model)
        total = 0
        while True:
            batch = list(
                model.objects.using(alias)
                .filter(**{f"{timestamp}__lt": cutoff})
                .order_by(timestamp)
                .values_list("pk", flat=True)[:batch_size]
            )
            if not batch:
                break
            model.objects.using(alias).filter(pk__in=batch).delete()
            total += len(batch)
        deleted[model._meta.model_name] = total
    return deleted
