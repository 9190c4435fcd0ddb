"""Filling the RequestQuarterHour rollup from stored minutes."""

import datetime as dt

from django.db import connections, router, transaction
from django.db.models import Max, Min

from apps.observability.telemetry.models import RequestMinute, RequestQuarterHour
from apps.observability.telemetry.rows import (
    BUCKET_FIELDS,
    COUNTER_FIELDS,
    QUARTER_HOUR_SECONDS,
    as_datetime,
    quarter_hour_start,
)
from apps.observability.telemetry.statistics import BucketStart, aggregates
from apps.observability.telemetry.writer import upsert_request_statistics

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
    if minute_model is None or quarter_hour_model is None:
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
                upsert_request_statistics(
                    connection, cursor, quarter_hour_model, "quarter_hour", rows, replace=True
                )
            written += len(rows)
        start += step
    return written
