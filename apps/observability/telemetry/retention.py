"""Retention of the request telemetry: what is older than TELEMETRY_RETENTION_DAYS goes."""

import datetime as dt

from django.db import router

from apps.common.database import delete_older_than
from apps.common.flusher import PRUNE_BATCH_SIZE
from apps.observability.telemetry.models import (
    ErrorGroup,
    RequestMinute,
    RequestQuarterHour,
    SlowRequest,
)


def prune_telemetry(retention_days, batch_size=PRUNE_BATCH_SIZE, now=None):
    """Delete statistics (minutes and quarter hours), slow requests and error groups older than
    `retention_days`.

    In batches of `batch_size` rows, each its own short transaction, so that pruning a large
    backlog never holds locks the flusher waits for. Returns the number deleted per model.
    """
    now = dt.datetime.now(tz=dt.UTC) if now is None else now
    cutoff = now - dt.timedelta(days=retention_days)
    deleted = {}
    for model, timestamp in (
        (RequestMinute, "minute"),
        (RequestQuarterHour, "quarter_hour"),
        (SlowRequest, "started_at"),
        (ErrorGroup, "last_seen"),
    ):
        rows = model.objects.using(router.db_for_write(model))
        deleted[model._meta.model_name] = delete_older_than(rows, timestamp, cutoff, batch_size)
    return deleted
