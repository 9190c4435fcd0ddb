"""Request telemetry in a process: the aggregator that buffers it, and its flush.

TelemetryMiddleware calls `record_request` once per request. The aggregator adds the request to a
row keyed by (minute, route, method) under a lock: a few additions in memory, no I/O. The
background flusher (apps/common/flusher.py) calls `flush_telemetry` every TELEMETRY_FLUSH_SECONDS
and when the worker exits, which writes the buffer in one transaction (telemetry/writer.py).
When the write fails the buffer is kept (bounded: the oldest minutes are dropped and counted) and
written by the next flush.
"""

import hashlib
import os
import time
from pathlib import Path

import structlog
from django.conf import settings

from apps.common.buffers import WriteBuffer
from apps.common.redaction import redact_text
from apps.observability.metrics import registry as metrics
from apps.observability.telemetry.rows import (
    DB_TIME,
    DURATION_MAX,
    DURATION_SUM,
    FIRST_BUCKET,
    QUERIES,
    REQUESTS,
    ROW_WIDTH,
    SLOW,
    SLOW_REQUESTS_PER_ROUTE_MINUTE,
    STATUS_2XX,
    STATUS_5XX,
    Batch,
    ErrorOccurrence,
    add_row,
    as_datetime,
    bucket_index,
    minute_start,
    normalise_method,
    percentile_from_buckets,
)
from apps.observability.telemetry.writer import write_batch

logger = structlog.get_logger(__name__)

# Bounds of the buffer, so that a database outage cannot grow a process without limit.
MAX_BUFFERED_MINUTES = 60
MAX_BUFFERED_ERROR_GROUPS = 500
SAMPLE_MESSAGE_LENGTH = 500
PROJECT_DIRECTORIES = tuple(
    str(Path(settings.BASE_DIR) / name) + os.sep for name in ("apps", "project")
)


class Aggregator(WriteBuffer):
    """This process's statistics not yet written, and its per-minute summary for the log."""

    def _reset(self):
        super()._reset()
        self._summaries = {}

    def empty(self):
        return Batch()

    def is_empty(self, batch):
        return batch.is_empty()

    def write(self, batch):
        write_batch(batch)

    def flush_failed(self, batch, error):
        metrics.TELEMETRY_FLUSH_FAILURES.inc()
        logger.warning(
            "telemetry_flush_failed", exc_info=error, buffered_requests=self.pending_requests()
        )

    def record(self, minute, route, method, status, duration_ms, query_count, db_time_ms, slow):
        index = FIRST_BUCKET + bucket_index(duration_ms)
        # 2xx..5xx; the rare 1xx is counted with 2xx, so that the classes add up to `requests`.
        status_slot = STATUS_2XX + min(max(status // 100 - 2, 0), 3)
        with self.lock:
            rows = self.pending.rows
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
        with self.lock:
            samples = self.pending.slow_requests.setdefault(key, [])
            if len(samples) < SLOW_REQUESTS_PER_ROUTE_MINUTE:
                samples.append(sample)

    def add_error(self, occurrence):
        with self.lock:
            errors = self.pending.errors
            known = errors.get(occurrence.fingerprint)
            if known is None:
                if len(errors) >= MAX_BUFFERED_ERROR_GROUPS:
                    return
                errors[occurrence.fingerprint] = occurrence
                return
            _merge_error(known, occurrence)

    def merge(self, batch):
        """Add a batch that could not be written into the pending one (lock held)."""
        rows = self.pending.rows
        for key, values in batch.rows.items():
            row = rows.get(key)
            if row is None:
                rows[key] = values
            else:
                add_row(row, values)
        for key, samples in batch.slow_requests.items():
            kept = self.pending.slow_requests.setdefault(key, [])
            kept[:0] = samples[: max(SLOW_REQUESTS_PER_ROUTE_MINUTE - len(kept), 0)]
        for fingerprint, occurrence in batch.errors.items():
            known = self.pending.errors.get(fingerprint)
            if known is None:
                self.pending.errors[fingerprint] = occurrence
            else:
                _merge_error(known, occurrence)
        self._drop_beyond_cap()

    def _drop_beyond_cap(self):
        """Drop the oldest minutes beyond MAX_BUFFERED_MINUTES; called with the lock held."""
        batch = self.pending
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
        with self.lock:
            finished = sorted(
                minute
                for minute in self._summaries
                if before_minute is None or minute < before_minute
            )
            return [(minute, self._summaries.pop(minute)) for minute in finished]

    def pending_requests(self):
        with self.lock:
            return sum(row[REQUESTS] for row in self.pending.rows.values())


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


def flush_telemetry():
    """Write this process's buffer; returns the number of requests written.

    Never raises: on failure the buffer is kept for the next flush, and the failure is logged and
    counted (orders_telemetry_flush_failures_total).
    """
    batch = aggregator.flush()
    return 0 if batch is None else sum(row[REQUESTS] for row in batch.rows.values())


def flush_job(final):
    """The flusher's job: write the buffer, log the finished minutes."""
    flush_telemetry()
    log_minute_summaries(None if final else minute_start(time.time()))


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
