"""The query inspector: one execute wrapper per connection, aggregating queries per unit of work.

A unit of work (a test block, a sampled request, an inspected command) is held in a context
variable, so each thread and asyncio task has its own and two never mix counts. Outside a unit
the wrapper costs one context variable lookup and keeps no state. Inside one, each execution is
timed and aggregated by (SQL fingerprint, call site); parameter values are only hashed, never
stored; the number of distinct entries is capped and the unit marked truncated beyond it.
"""

import contextlib
import contextvars
import logging
import sys
import time
from dataclasses import dataclass

from django.conf import settings

from apps.common.database import install_execute_wrapper
from apps.common.sql import fingerprint_of, normalise_sql
from apps.profiling.callsite import find_callsite, wrapper_codes

N_PLUS_ONE = "n_plus_one"
N_PLUS_ONE_WRITE = "n_plus_one_write"
DUPLICATE = "duplicate"
SLOW = "slow"
# Identical SQL and parameters this many times in one unit is a duplicate (a caching candidate).
DUPLICATE_THRESHOLD = 3
# Distinct (fingerprint, call site) entries kept per unit; beyond it the unit is truncated.
MAX_ENTRIES = 2000
# Executions told apart by (SQL, parameters) hash per unit, to find duplicates across call sites;
# beyond it the unit is truncated.
MAX_IDENTICAL_KEYS = 5000
READ_KEYWORDS = frozenset({"SELECT", "WITH", "VALUES", "TABLE"})
WRITE_KEYWORDS = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE"})

logger = logging.getLogger(__name__)
active_unit = contextvars.ContextVar("profiling_active_unit", default=None)


@dataclass(frozen=True)
class Finding:
    """One problem found in a unit: `callsite` is "path.py:LINE" (plus template/serializer)."""

    kind: str
    fingerprint: str
    count: int
    callsite: str
    sql: str
    total_ms: float
    max_ms: float

    def describe(self):
        return (
            f"{self.kind}: {self.count} x at {self.callsite} "
            f"(fingerprint {self.fingerprint}): {self.sql}"
        )


class Entry:
    """Executions of one statement shape from one call site."""

    __slots__ = (
        *("callsite", "count", "first_parameters", "max_ms"),
        *("slow", "sql", "total_ms", "varied"),
    )

    def __init__(self, sql, callsite):
        self.sql = sql
        self.callsite = callsite
        self.count = 0
        self.total_ms = 0.0
        self.max_ms = 0.0
        self.slow = 0
        # Hash of the first (SQL, parameters) and whether another one was seen since: all that
        # "with different parameters" needs. Parameter values themselves are never kept.
        self.first_parameters = None
        self.varied = False


def _parameters_hash(sql, params, many):
    if params is None:
        return hash(sql)
    if many:
        # executemany: one execution of many rows; its rows are not compared.
        return None
    try:
        if isinstance(params, dict):
            return hash((sql, tuple(sorted(params.items()))))
        return hash((sql, tuple(params)))
    except TypeError:
        return hash((sql, repr(params)))


def _n_plus_one_kind(normalised_sql):
    """N_PLUS_ONE for a read repeated row by row, N_PLUS_ONE_WRITE for a write (a bulk_create,
    bulk_update or single UPDATE candidate), None for anything else (DDL, a procedure call)."""
    keyword = normalised_sql.lstrip("( ").split(None, 1)[0].upper()
    if keyword in READ_KEYWORDS:
        return N_PLUS_ONE
    if keyword in WRITE_KEYWORDS:
        return N_PLUS_ONE_WRITE
    return None


class Unit:
    """What one unit of work executed, aggregated; `report()` turns it into findings."""

    def __init__(self, threshold=None, slow_ms=None, max_entries=MAX_ENTRIES):
        self.threshold = settings.NPLUSONE_THRESHOLD if threshold is None else threshold
        if self.threshold < 2:
            raise ValueError(f"threshold must be at least 2, got {self.threshold}")
        self.slow_ms = settings.LOG_SLOW_QUERY_MS if slow_ms is None else slow_ms
        self.max_entries = max_entries
        self.entries = {}
        self.truncated = False
        self.queries = 0
        # hash of (SQL, parameters) -> [executions, Entry of the first one, whether every
        # execution came from that Entry]
        self.identical = {}

    def record(self, sql, params, many, milliseconds, caller, context=None):
        normalised, ignored = normalise_sql(sql)
        if ignored:
            return
        connection = (context or {}).get("connection")
        skipped = wrapper_codes(connection.execute_wrappers) if connection is not None else ()
        callsite = find_callsite(caller, skipped)
        if callsite is None:
            return
        self.queries += 1
        key = (normalised, callsite.key)
        entry = self.entries.get(key)
        if entry is None:
            if len(self.entries) >= self.max_entries:
                self.truncated = True
                return
            entry = self.entries[key] = Entry(normalised, callsite.label)
        entry.count += 1
        entry.total_ms += milliseconds
        entry.max_ms = max(entry.max_ms, milliseconds)
        if milliseconds >= self.slow_ms:
            entry.slow += 1
        parameters = _parameters_hash(sql, params, many)
        if parameters is None:
            return
        if entry.first_parameters is None:
            entry.first_parameters = parameters
        elif parameters != entry.first_parameters:
            entry.varied = True
        seen = self.identical.get(parameters)
        if seen is not None:
            seen[0] += 1
            if seen[1] is not entry:
                seen[2] = False
        elif len(self.identical) < MAX_IDENTICAL_KEYS:
            self.identical[parameters] = [1, entry, True]
        else:
            self.truncated = True

    def report(self):
        findings = []
        n_plus_one_entries = set()
        for entry in self.entries.values():
            kind = _n_plus_one_kind(entry.sql)
            if entry.count >= self.threshold and entry.varied and kind is not None:
                findings.append(_finding(kind, entry.count, entry))
                n_plus_one_entries.add(entry)
            if entry.slow:
                findings.append(_finding(SLOW, entry.slow, entry))
        for count, entry, one_call_site in self.identical.values():
            if count < DUPLICATE_THRESHOLD:
                continue
            if one_call_site and entry in n_plus_one_entries:
                # Rows the loop revisits: the N+1 finding of that loop already names it.
                continue
            # Named by the call site of the first execution.
            findings.append(_finding(DUPLICATE, count, entry))
        return Report(findings, truncated=self.truncated, queries=self.queries)


def _finding(kind, count, entry):
    return Finding(
        kind=kind,
        fingerprint=fingerprint_of(entry.sql),
        count=count,
        callsite=entry.callsite,
        sql=entry.sql,
        total_ms=round(entry.total_ms, 3),
        max_ms=round(entry.max_ms, 3),
    )


class Report:
    """Findings of one unit. `findings` are the N+1 reads, `write_findings` the N+1 writes; all
    kinds are in `all_findings`."""

    def __init__(self, all_findings=(), truncated=False, queries=0):
        self.all_findings = list(all_findings)
        self.truncated = truncated
        self.queries = queries

    def of_kind(self, kind):
        return [finding for finding in self.all_findings if finding.kind == kind]

    @property
    def findings(self):
        return self.of_kind(N_PLUS_ONE)

    @property
    def write_findings(self):
        return self.of_kind(N_PLUS_ONE_WRITE)

    @property
    def duplicates(self):
        return self.of_kind(DUPLICATE)

    @property
    def slow_queries(self):
        return self.of_kind(SLOW)

    def _fill(self, other):
        self.all_findings = other.all_findings
        self.truncated = other.truncated
        self.queries = other.queries


@contextlib.contextmanager
def unit_of_work(threshold=None, slow_ms=None, max_entries=MAX_ENTRIES):
    """Aggregate the queries of this block (this thread or task only); yields its Report.

    The report is filled when the block ends. Units do not nest into each other: an inner unit
    hides its queries from the outer one.
    """
    unit = Unit(threshold=threshold, slow_ms=slow_ms, max_entries=max_entries)
    report = Report()
    token = active_unit.set(unit)
    try:
        yield report
    finally:
        active_unit.reset(token)
        report._fill(unit.report())


def inspect_query(execute, sql, params, many, context):
    """Execute wrapper: outside a unit one context variable lookup, inside it times and records."""
    unit = active_unit.get()
    if unit is None:
        return execute(sql, params, many, context)
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        milliseconds = (time.perf_counter() - started) * 1000
        try:
            unit.record(sql, params, many, milliseconds, sys._getframe(1), context)
        except Exception:
            # The inspector never breaks a query; its own failure is logged.
            logger.exception("query inspector failed to record a query")


def install_inspector():
    """Wrap every database connection of the process (any alias, any thread) from now on."""
    install_execute_wrapper(inspect_query, dispatch_uid="profiling-query-inspector")
