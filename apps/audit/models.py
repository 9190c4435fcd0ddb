"""The audits that were run: the last one is exported to Prometheus, the others are history."""

from django.db import models


class AuditRun(models.Model):
    """One run of the scaling audit, with its whole report as the JSON the command writes."""

    started_at = models.DateTimeField()
    duration_ms = models.FloatField()
    passed = models.BooleanField()
    fail_on = models.CharField(max_length=10)
    window_minutes = models.PositiveIntegerField()
    instances = models.PositiveIntegerField()
    critical = models.PositiveIntegerField(default=0)
    warnings = models.PositiveIntegerField(default=0)
    report = models.JSONField()

    class Meta:
        indexes = [models.Index(fields=["-started_at"], name="audit_run_started_at")]
        ordering = ["-started_at"]

    def __str__(self):
        return f"{'PASS' if self.passed else 'FAIL'} at {self.started_at:%Y-%m-%d %H:%M}"
