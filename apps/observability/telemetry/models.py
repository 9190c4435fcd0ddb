"""Request statistics written by the telemetry flusher (telemetry/aggregation.py).

Rows are only ever added to by the flusher's atomic upserts (RequestQuarterHour also filled once
from stored minutes by migration 0003) and deleted by `prune_telemetry`; the admin shows the
minutes read-only.
"""

from django.db import models
from django.db.models import FloatField
from django.db.models.functions import Cast, Greatest

from apps.observability.telemetry.rows import BUCKET_FIELDS, LATENCY_BUCKET_BOUNDS_MS


class RequestStatistics(models.Model):
    """Requests of one route and method in one period, summed over every process.

    The columns shared by the per-minute rows and their 15-minute rollup; `PERIOD_FIELD` names
    the concrete model's period-start column.
    """

    PERIOD_FIELD = None

    route = models.CharField(max_length=255, help_text="URL pattern, never the raw path.")
    method = models.CharField(max_length=10)
    requests = models.BigIntegerField(default=0)
    status_2xx = models.BigIntegerField("2xx", default=0)
    status_3xx = models.BigIntegerField("3xx", default=0)
    status_4xx = models.BigIntegerField("4xx", default=0)
    status_5xx = models.BigIntegerField("5xx", default=0)
    slow = models.BigIntegerField(default=0, help_text="Requests at or above LOG_SLOW_REQUEST_MS.")
    duration_sum_ms = models.FloatField(default=0)
    duration_max_ms = models.FloatField(default=0)
    query_count = models.BigIntegerField(default=0, help_text="Database queries, summed.")
    db_time_ms = models.FloatField(default=0, help_text="Time in database queries, summed.")

    class Meta:
        abstract = True


class RequestMinute(RequestStatistics):
    """Requests of one route and method in one minute, summed over every process."""

    PERIOD_FIELD = "minute"

    minute = models.DateTimeField(help_text="Start of the minute (UTC).")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["minute", "route", "method"], name="request_minute_unique_key"
            ),
        ]
        indexes = [models.Index(fields=["route", "minute"], name="request_minute_route")]
        ordering = ["-minute", "route", "method"]
        # The one permission of the ops side (apps/common/ops_access.py); declared here because
        # a permission needs a model, and this is the model the ops pages read first.
        permissions = [
            ("view_ops", "Can view the ops pages, /stats, /metrics, /health-detailed and silk"),
        ]

    def __str__(self):
        return f"{self.method} {self.route} at {self.minute:%Y-%m-%d %H:%M}"


class RequestQuarterHour(RequestStatistics):
    """The same sums per 15 minutes: the rollup the ops dashboards read for long windows.

    The flusher adds each buffered row to its minute and to its quarter hour in one transaction,
    so the two tables agree; migration 0003 filled it from the minutes stored before it existed.
    """

    PERIOD_FIELD = "quarter_hour"

    quarter_hour = models.DateTimeField(help_text="Start of the 15 minutes (UTC).")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["quarter_hour", "route", "method"],
                name="request_quarter_hour_unique_key",
            ),
        ]
        indexes = [
            models.Index(fields=["route", "quarter_hour"], name="request_quarter_hour_route")
        ]
        ordering = ["-quarter_hour", "route", "method"]

    def __str__(self):
        return f"{self.method} {self.route} at {self.quarter_hour:%Y-%m-%d %H:%M} (15 min)"


# The latency histogram: one integer column per bucket, so that upserts can add to each one.
for _model in (RequestMinute, RequestQuarterHour):
    for _name, _upper in zip(BUCKET_FIELDS, (*LATENCY_BUCKET_BOUNDS_MS, None), strict=True):
        _model.add_to_class(
            _name,
            models.BigIntegerField(
                f"≤ {_upper} ms" if _upper is not None else f"> {LATENCY_BUCKET_BOUNDS_MS[-1]} ms",
                default=0,
            ),
        )


def rate(numerator, denominator):
    """A ratio computed in SQL (0 when the denominator is 0)."""
    return Cast(numerator, FloatField()) / Greatest(Cast(denominator, FloatField()), 1.0)


class SlowRequest(models.Model):
    """One request at or above LOG_SLOW_REQUEST_MS (at most 10 per route and minute)."""

    started_at = models.DateTimeField()
    method = models.CharField(max_length=10)
    route = models.CharField(max_length=255)
    path = models.CharField(max_length=1000, help_text="Without the query string.")
    status = models.PositiveSmallIntegerField()
    duration_ms = models.FloatField()
    query_count = models.PositiveIntegerField(default=0)
    db_time_ms = models.FloatField(default=0)
    request_id = models.CharField(max_length=64, blank=True)
    # Ids, not foreign keys: observability does not depend on the domain apps, and recording
    # them costs no query on the request path.
    user_id = models.BigIntegerField(null=True, blank=True)
    organization_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["started_at"], name="slow_request_started_at"),
            models.Index(fields=["route", "started_at"], name="slow_request_route"),
        ]
        ordering = ["-started_at"]

    def __str__(self):
        return f"{self.method} {self.path} {self.duration_ms:.0f} ms"


class ErrorGroup(models.Model):
    """5xx answers caused by one exception class raised from one place in the project's code."""

    class Status(models.TextChoices):
        OPEN = "open", "open"
        RESOLVED = "resolved", "resolved"

    fingerprint = models.CharField(max_length=40, unique=True)
    exception_class = models.CharField(max_length=255)
    frame = models.CharField(max_length=500, help_text="Innermost frame in apps/ or project/.")
    route = models.CharField(max_length=255, help_text="Route of the latest occurrence.")
    method = models.CharField(max_length=10)
    count = models.BigIntegerField(default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    last_request_id = models.CharField(max_length=64, blank=True)
    sample_message = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["last_seen"], name="error_group_last_seen"),
            models.Index(fields=["status", "-last_seen"], name="error_group_status"),
        ]
        ordering = ["-last_seen"]

    def __str__(self):
        return f"{self.exception_class} at {self.frame}"
