"""One row of request statistics: its counters and latency histogram, and what a flush writes.

A row is keyed by (period start, route, method) and holds COUNTER_FIELDS then one count per
latency bucket, in memory (a list, slots below) and in the RequestMinute and RequestQuarterHour
tables (one column each, so that an upsert can add to every one). The histogram's fixed bounds
keep percentiles summable across processes and exact to within one bucket.
"""

import bisect
import datetime as dt
from dataclasses import dataclass, field

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

QUARTER_HOUR_SECONDS = 15 * 60
# Slow requests kept per route and minute, in a process's buffer and in the table alike.
SLOW_REQUESTS_PER_ROUTE_MINUTE = 10
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})


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


def normalise_method(method):
    """The method as telemetry labels it: one of KNOWN_METHODS, else "OTHER"."""
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
