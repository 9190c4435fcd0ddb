"""Query findings off the request path: an in-process buffer and how it reaches the database.

A sampled request (apps/profiling/middleware.py) or an inspected command hands its report to
`record_findings`: each finding is counted (orders_query_findings_total{kind}) and merged into
this process's buffer under its key (kind, fingerprint, call site, source), in memory, no I/O.
The telemetry flusher (apps/common/flusher.py) calls `flush_findings` every
TELEMETRY_FLUSH_SECONDS and when the worker exits: one atomic upsert per finding (INSERT ... ON
CONFLICT DO UPDATE SET occurrences = occurrences + excluded.occurrences, GREATEST/MAX for the
maxima, on PostgreSQL and SQLite), so processes adding into the same row never lose an update.
A finding marked fixed that is seen again after that is new again.

When the write fails the buffer is kept for the next flush and the failure logged and counted;
the buffer holds at most MAX_BUFFERED_FINDINGS keys, and findings with a new key beyond that are
dropped and counted. Nothing here ever raises into a request.
"""

import datetime as dt
import hashlib
import time
from dataclasses import dataclass

import structlog
from django.db import connections, router, transaction

from apps.common.buffers import WriteBuffer
from apps.common.database import delete_older_than, greatest, least, upsert_sql
from apps.common.flusher import PRUNE_BATCH_SIZE
from apps.profiling import metrics
from apps.profiling.models import QueryFinding

logger = structlog.get_logger(__name__)

# Distinct findings a process keeps while the database is unreachable: a process sees a small,
# fixed set of (kind, statement, call site, route), so this is only reached in a long outage.
MAX_BUFFERED_FINDINGS = 1000
# The columns' widths: a longer value would fail every flush.
CALLSITE_LENGTH = 500
SOURCE_LENGTH = 255
REQUEST_ID_LENGTH = 64
SILK_REQUEST_ID_LENGTH = 36


def finding_key(kind, fingerprint, callsite, source):
    """The row's upsert key: sha1 of what tells findings apart (hex, 40 characters)."""
    text = "\n".join((kind, fingerprint, callsite, source))
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


@dataclass
class PendingFinding:
    """One finding's occurrences in this process, not yet written."""

    key: str
    kind: str
    fingerprint: str
    sample_sql: str
    callsite: str
    source: str
    occurrences: int
    max_repeats: int
    total_ms: float
    max_ms: float
    first_seen: float
    last_seen: float
    last_request_id: str
    silk_request_id: str

    def merge(self, other):
        """Add `other` (the same key) into this one, as the database upsert does."""
        self.occurrences += other.occurrences
        self.max_repeats = max(self.max_repeats, other.max_repeats)
        self.total_ms += other.total_ms
        self.max_ms = max(self.max_ms, other.max_ms)
        self.first_seen = min(self.first_seen, other.first_seen)
        newer = other.last_seen >= self.last_seen
        if other.silk_request_id and (newer or not self.silk_request_id):
            self.silk_request_id = other.silk_request_id
        if newer:
            self.last_seen = other.last_seen
            self.last_request_id = other.last_request_id


class FindingBuffer(WriteBuffer):
    """This process's findings not yet written, merged by key."""

    def empty(self):
        return {}

    def is_empty(self, batch):
        return not batch

    def add(self, pending):
        with self.lock:
            self._add(pending)

    def _add(self, pending):
        known = self.pending.get(pending.key)
        if known is not None:
            known.merge(pending)
        elif len(self.pending) < MAX_BUFFERED_FINDINGS:
            self.pending[pending.key] = pending
        else:
            metrics.FINDINGS_DROPPED.inc()
            logger.warning("query_findings_buffer_full", kind=pending.kind, source=pending.source)

    def merge(self, batch):
        for pending in batch.values():
            self._add(pending)

    def write(self, batch):
        write_findings(batch)

    def flush_failed(self, batch, error):
        metrics.FINDINGS_FLUSH_FAILURES.inc()
        logger.warning("query_findings_flush_failed", exc_info=error, buffered_findings=len(self))

    def __len__(self):
        with self.lock:
            return len(self.pending)


buffer = FindingBuffer()


def record_findings(report, *, source, request_id="", silk_request_id="", at=None):
    """Count the findings of one unit of work and buffer them (O(findings), in memory).

    `source` is the route template of a request or "command <name>"; returns how many findings
    were recorded.
    """
    at = time.time() if at is None else at
    source = source[:SOURCE_LENGTH]
    for finding in report.all_findings:
        metrics.QUERY_FINDINGS.labels(finding.kind).inc()
        callsite = finding.callsite[:CALLSITE_LENGTH]
        buffer.add(
            PendingFinding(
                key=finding_key(finding.kind, finding.fingerprint, callsite, source),
                kind=finding.kind,
                fingerprint=finding.fingerprint,
                sample_sql=finding.sql,
                callsite=callsite,
                source=source,
                occurrences=1,
                max_repeats=finding.count,
                total_ms=finding.total_ms,
                max_ms=finding.max_ms,
                first_seen=at,
                last_seen=at,
                last_request_id=(request_id or "")[:REQUEST_ID_LENGTH],
                silk_request_id=(silk_request_id or "")[:SILK_REQUEST_ID_LENGTH],
            )
        )
    return len(report.all_findings)


# --- Writing -----------------------------------------------------------------------------------


def flush_findings():
    """Write this process's buffered findings; returns how many rows were written.

    Never raises: on failure the buffer is kept for the next flush, and the failure is logged and
    counted (orders_query_findings_flush_failures_total).
    """
    findings = buffer.flush()
    return 0 if findings is None else len(findings)


def flush_job(final):
    """The background flusher's job (apps/common/flusher.py)."""
    flush_findings()


def write_findings(findings):
    """Upsert every finding of `findings` (key -> PendingFinding) in one transaction."""
    alias = router.db_for_write(QueryFinding)
    connection = connections[alias]
    sql = _upsert_sql(connection, QueryFinding)
    adapt = connection.ops.adapt_datetimefield_value

    def moment(timestamp):
        return adapt(dt.datetime.fromtimestamp(timestamp, tz=dt.UTC))

    # A fixed order: concurrent flushes lock rows in the same order and cannot deadlock.
    parameters = [
        (
            pending.key,
            pending.kind,
            pending.fingerprint,
            pending.sample_sql,
            pending.callsite,
            pending.source,
            pending.occurrences,
            pending.max_repeats,
            round(pending.total_ms, 3),
            round(pending.max_ms, 3),
            moment(pending.first_seen),
            moment(pending.last_seen),
            pending.last_request_id,
            pending.silk_request_id,
            QueryFinding.Status.NEW,
        )
        for _, pending in sorted(findings.items())
    ]
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        cursor.executemany(sql, parameters)


_INSERTED_COLUMNS = (
    "key",
    "kind",
    "fingerprint",
    "sample_sql",
    "callsite",
    "source",
    "occurrences",
    "max_repeats",
    "total_ms",
    "max_ms",
    "first_seen",
    "last_seen",
    "last_request_id",
    "silk_request_id",
    "status",
)


def _upsert_sql(connection, model):
    """The upsert of one finding: counts add up, maxima and minima keep the extreme, the latest
    occurrence names the request, and a finding marked fixed that is seen again is new again."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    maximum, minimum = greatest(connection), least(connection)
    fixed = model.Status.FIXED.value
    new = model.Status.NEW.value

    def old(column):
        return f"{table}.{quote(column)}"

    def incoming(column):
        return f"excluded.{quote(column)}"

    newer = f"{incoming('last_seen')} >= {old('last_seen')}"
    # Seen again after someone marked it fixed: new again. Values of the literals come from the
    # model's choices, never from input.
    recurs = (
        f"{old('status')} = '{fixed}' AND ({old('status_changed_at')} IS NULL "
        f"OR {incoming('last_seen')} > {old('status_changed_at')})"
    )
    assignments = {
        "occurrences": f"{old('occurrences')} + {incoming('occurrences')}",
        "max_repeats": f"{maximum}({old('max_repeats')}, {incoming('max_repeats')})",
        "total_ms": f"{old('total_ms')} + {incoming('total_ms')}",
        "max_ms": f"{maximum}({old('max_ms')}, {incoming('max_ms')})",
        "first_seen": f"{minimum}({old('first_seen')}, {incoming('first_seen')})",
        "last_seen": f"{maximum}({old('last_seen')}, {incoming('last_seen')})",
        "last_request_id": (
            f"CASE WHEN {newer} THEN {incoming('last_request_id')} "
            f"ELSE {old('last_request_id')} END"
        ),
        "silk_request_id": (
            f"CASE WHEN {incoming('silk_request_id')} <> '' "
            f"AND ({newer} OR {old('silk_request_id')} = '') "
            f"THEN {incoming('silk_request_id')} ELSE {old('silk_request_id')} END"
        ),
        "status": f"CASE WHEN {recurs} THEN '{new}' ELSE {old('status')} END",
        "status_changed_at": (
            f"CASE WHEN {recurs} THEN {incoming('last_seen')} ELSE {old('status_changed_at')} END"
        ),
    }
    return upsert_sql(
        connection,
        table,
        _INSERTED_COLUMNS,
        ("key",),
        [f"{quote(column)} = {value}" for column, value in assignments.items()],
    )


# --- Retention ---------------------------------------------------------------------------------


def prune_findings(retention_days, batch_size=PRUNE_BATCH_SIZE, now=None):
    """Delete findings last seen more than `retention_days` ago, in batches of `batch_size`.

    Whatever their status: a pruned finding that comes back is new again. Returns the number
    deleted, keyed by model name, as every prune job of the background flusher does.
    """
    now = dt.datetime.now(tz=dt.UTC) if now is None else now
    cutoff = now - dt.timedelta(days=retention_days)
    rows = QueryFinding.objects.using(router.db_for_write(QueryFinding))
    return {QueryFinding._meta.model_name: delete_older_than(rows, "last_seen", cutoff, batch_size)}
