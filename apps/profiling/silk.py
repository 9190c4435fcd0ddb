"""django-silk integration: which requests are recorded, what is masked, what a query keeps.

silk is only installed when SILK_ENABLED is on (project/settings.py): once it has recorded a
request it patches Django's query execution for the life of the process, so "off" must mean
"not installed", never "installed but idle". Who may look is SILKY_PERMISSIONS: the one rule of
the ops side (apps/common/ops_access.py).
"""

import base64
import binascii
import datetime as dt
import decimal
import json
import random
import re
import traceback

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.utils import timezone

from apps.common import request_context
from apps.common.paths import is_ops_path
from apps.common.redaction import redact, redact_text


def should_record(request):
    """SILKY_INTERCEPT_FUNC: SILK_SAMPLE_PERCENT of the requests outside the unrecorded paths.

    silk ignores SILKY_INTERCEPT_PERCENT once an intercept function is set, so the sampling is
    done here. The percentage is read on every call so that a test can change it.
    """
    if is_ops_path(request.path_info):
        return False
    percent = settings.SILK_SAMPLE_PERCENT
    recorded = percent >= 100 or (
        percent > 0 and random.random() * 100 < percent  # noqa: S311 - sampling, not security
    )
    if recorded:
        _connect_masking()
    return recorded


def request_wrappers():
    """silk's code around other code's queries: the SQLCompiler.execute_sql it patches in once it
    has recorded a request, the guard in front of that (`execute_sql_when_recording`) and the
    query silk wraps (`request_query`). The middleware's __call__, which runs instead of silk's,
    marks itself (apps/profiling/silk_middleware.py)."""
    return (
        execute_sql_recording_statement,
        execute_sql_when_recording,
        request_query,
    )


# Django's SQLCompiler.execute_sql and the recording that replaces silk's, once
# install_query_guard has run.
_django_execute_sql = None
_silk_execute_sql = None
_data_collector = None


def execute_sql_when_recording(compiler, *args, **kwargs):
    """SQLCompiler.execute_sql: silk's while it records this thread's request, else Django's.

    silk's is its own work (compiling the query again, its traceback, an EXPLAIN on the request's
    connection) around the request's query (`request_query`, its `_execute_sql`).
    """
    if _data_collector().request is None:
        return _django_execute_sql(compiler, *args, **kwargs)
    with request_context.profiler_work():
        return _silk_execute_sql(compiler, *args, **kwargs)


def request_query(compiler, *args, **kwargs):
    """SQLCompiler._execute_sql, which silk's execute_sql calls: the request's own query."""
    with request_context.request_work():
        return _django_execute_sql(compiler, *args, **kwargs)


def install_query_guard():
    """Put silk's SQLCompiler patch in place at start-up, behind a guard.

    silk patches SQLCompiler.execute_sql the first time it records a request and keeps the patch
    for the life of the process. Its function compiles each query's SQL a second time and formats
    its parameters before asking whether a request is being recorded, so at SILK_SAMPLE_PERCENT=1
    the 99 % of requests silk does not record pay for every query. silk patches only when
    SQLCompiler has no `_execute_sql` yet: with this in place first, it sees its patch installed,
    and unrecorded requests run Django's execute_sql with one thread-local lookup added. Recorded
    requests run `execute_sql_recording_statement` instead of silk's function: silk's stores the
    values.
    """
    global _django_execute_sql, _silk_execute_sql, _data_collector
    from django.db.models.sql.compiler import SQLCompiler
    from silk.collector import DataCollector

    if hasattr(SQLCompiler, "_execute_sql"):
        return
    _django_execute_sql = SQLCompiler.execute_sql
    _silk_execute_sql = execute_sql_recording_statement
    _data_collector = DataCollector
    SQLCompiler._execute_sql = request_query
    SQLCompiler.execute_sql = execute_sql_when_recording


# Values shown in a recorded statement: they say which row or how many, and none of the secrets
# this project stores is one. Any other value (text, bytes, dates, JSON, lists) stays a placeholder.
_SHOWN_VALUE_TYPES = (int, float, decimal.Decimal)
# A quoted constant in a query plan: PostgreSQL's EXPLAIN prints the values it was given.
_QUOTED_CONSTANT = re.compile(r"'(?:[^']|'')*'")


def _shown(value):
    if value is None:
        return "NULL"
    if isinstance(value, _SHOWN_VALUE_TYPES):
        return str(value)
    return "%s"


def statement_without_values(sql, params):
    """The statement silk shows, with every value but numbers left as its placeholder (%s)."""
    try:
        return sql % tuple(_shown(value) for value in params)
    except (TypeError, ValueError):
        return sql


def plan_without_values(plan):
    return _QUOTED_CONSTANT.sub("'%s'", plan) if plan else plan


def execute_sql_recording_statement(compiler, *args, **kwargs):
    """silk's SQLCompiler.execute_sql (silk.sql.execute_sql), without the values.

    silk stores each statement as `sql % params`, every value spliced in unquoted: a recorded
    sign-in stored the new session key, a password change the hash, and no pattern can find such
    values in that text again. This records what silk records (statement, traceback, plan, times)
    from the statement with its placeholders instead, and masks the plan's quoted constants.
    """
    from silk.sql import _explain_query, _should_wrap

    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:
        sql = ""
    if not sql:  # Django's execute_sql answers an empty result itself
        return compiler._execute_sql(*args, **kwargs)
    statement = statement_without_values(sql, params)
    if not _should_wrap(statement):
        return compiler._execute_sql(*args, **kwargs)
    own_query = getattr(compiler.query.model, "__module__", "") == "silk.models"
    recorded = {"query": statement, "start_time": timezone.now()}
    if not own_query:
        # silk keeps only the count and times of its own queries: no stack to format for them.
        recorded["traceback"] = "".join(reversed(traceback.format_stack()))
    try:
        return compiler._execute_sql(*args, **kwargs)
    finally:
        recorded["end_time"] = timezone.now()
        collector = _data_collector()
        if collector.request is not None:
            recorded["request"] = collector.request
        if own_query:
            collector.register_silk_query(recorded)
        else:
            plan = _explain_query(compiler.connection, sql, params)
            recorded["analysis"] = plan_without_values(plan)
            collector.register_query(recorded)


def recorded_request_id():
    """silk's id of the request being recorded in this thread ("" when silk does not record it):
    its page is /silk/request/<id>/."""
    from silk.collector import DataCollector

    recorded = DataCollector().request
    return str(recorded.pk) if recorded is not None else ""


# silk masks request headers and body fields, but stores query strings and response headers and
# bodies (an admin page can show a new API key) as they are. Everything it writes goes through the
# project's redaction as well.


def _redact_json_text(text):
    if not text:
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return redact_text(text)
    return json.dumps(redact(value, stringify=str))


def _redact_base64_text(encoded):
    # Response.raw_body: the response content in base64; binary content is left alone.
    if not encoded:
        return encoded
    try:
        text = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return encoded
    redacted = redact_text(text)
    if redacted is text:
        return encoded
    return base64.b64encode(redacted.encode("utf-8")).decode("ascii")


def _mask_fields(instance, update_fields, maskers):
    """Mask each field of `maskers` ({name: function}) that this save writes, unless it still holds
    the value masked at an earlier save: written silk's own way (a recording with Python profiles),
    a request is saved four times or more, once per query only to count it."""
    masked = instance.__dict__.setdefault("_masked_values", {})
    for name, mask in maskers.items():
        if update_fields is not None and name not in update_fields:
            continue
        value = getattr(instance, name)
        if name in masked and masked[name] is value:
            continue
        value = mask(value)
        setattr(instance, name, value)
        masked[name] = value


def _redact_raw_request_body(raw_body):
    return redact_text(raw_body) if isinstance(raw_body, str) else raw_body


_REQUEST_MASKERS = {
    "encoded_headers": _redact_json_text,
    "query_params": _redact_json_text,
    "body": redact_text,
    "raw_body": _redact_raw_request_body,
}
_RESPONSE_MASKERS = {
    "encoded_headers": _redact_json_text,
    "body": redact_text,
    "raw_body": _redact_base64_text,
}


def mask_recorded_request(sender, instance, update_fields=None, **kwargs):
    _mask_fields(instance, update_fields, _REQUEST_MASKERS)


def mask_recorded_response(sender, instance, update_fields=None, **kwargs):
    _mask_fields(instance, update_fields, _RESPONSE_MASKERS)


_masking_connected = False


def _connect_masking():
    # Connected before the first recording rather than at start-up: silk's models can only be
    # imported once apps are loaded, and this module is imported by the settings.
    global _masking_connected
    if _masking_connected:
        return
    from django.db.models.signals import pre_save
    from silk.models import Request, Response

    pre_save.connect(mask_recorded_request, sender=Request, dispatch_uid="silk-mask-request")
    pre_save.connect(mask_recorded_response, sender=Response, dispatch_uid="silk-mask-response")
    _masking_connected = True


# How far apart silk's start time and the service's own may be for one request: both are taken
# in the same process within the same middleware stack.
SAME_REQUEST_SLACK = dt.timedelta(seconds=2)


def recording_of(method, path, started_at):
    """silk's recording of the request `method path` that started at `started_at`, or None (silk
    samples SILK_SAMPLE_PERCENT of the requests and prunes old ones)."""
    from silk.models import Request

    nearby = Request.objects.filter(
        method=method,
        path=path,
        start_time__range=(started_at - SAME_REQUEST_SLACK, started_at + SAME_REQUEST_SLACK),
    ).only("id", "start_time")[:20]
    return min(nearby, key=lambda recorded: abs(recorded.start_time - started_at), default=None)


def slowest_queries(recorded, limit=5):
    """The `limit` slowest queries silk recorded for a request, slowest first."""
    return list(recorded.queries.order_by("-time_taken").only("query", "time_taken")[:limit])
