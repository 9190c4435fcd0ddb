"""Query findings of the inspector (apps/profiling/inspector.py), persisted off the request path.

One row per (kind, SQL fingerprint, call site, route or command): every later occurrence adds to
it with an atomic upsert. Parameter values are never stored, only the normalised SQL.
"""

from django.db import models


class QueryFinding(models.Model):
    """An N+1 (read or write), duplicate or slow query pattern seen in sampled requests, commands
    or tests."""

    class Kind(models.TextChoices):
        N_PLUS_ONE = "n_plus_one", "N+1"
        N_PLUS_ONE_WRITE = "n_plus_one_write", "N+1 write"
        DUPLICATE = "duplicate", "duplicate"
        SLOW = "slow", "slow query"

    class Status(models.TextChoices):
        NEW = "new", "new"
        ACKNOWLEDGED = "acknowledged", "acknowledged"
        IGNORED = "ignored", "ignored"
        FIXED = "fixed", "fixed"

    # sha1 of (kind, fingerprint, call site, source): the upsert key, since the call site and
    # the source together can be longer than a unique index allows.
    key = models.CharField(max_length=40, unique=True, editable=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    fingerprint = models.CharField(max_length=16, help_text="Hash of the normalised SQL.")
    sample_sql = models.TextField(help_text="Normalised SQL: literals replaced, never values.")
    callsite = models.CharField(
        "call site", max_length=500, help_text="path.py:LINE in project code (template, field)."
    )
    source = models.CharField(
        max_length=255, help_text="Route template of the request, or 'command <name>', or 'test'."
    )
    occurrences = models.BigIntegerField(default=0, help_text="Units of work it was found in.")
    max_repeats = models.BigIntegerField(default=0, help_text="Most executions in one unit.")
    total_ms = models.FloatField(default=0, help_text="Time of its executions, summed.")
    max_ms = models.FloatField(default=0, help_text="Slowest single execution.")
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    last_request_id = models.CharField(max_length=64, blank=True)
    silk_request_id = models.CharField(
        max_length=36, blank=True, help_text="silk's id of the last recorded request, if any."
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.NEW)
    status_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["last_seen"], name="query_finding_last_seen"),
            models.Index(fields=["status", "-last_seen"], name="query_finding_status"),
            models.Index(fields=["kind", "-last_seen"], name="query_finding_kind"),
        ]
        ordering = ["-last_seen"]

    def __str__(self):
        return f"{self.get_kind_display()} at {self.callsite}"
