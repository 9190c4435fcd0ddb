from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.common import flusher


class Command(BaseCommand):
    help = (
        "Delete request statistics (per minute and their 15-minute rollup), slow requests, error "
        "groups and query findings (by last seen) older than TELEMETRY_RETENTION_DAYS, in "
        "batches. The flusher of the web processes does the same at most once an hour; run this "
        "from cron or a Kubernetes CronJob to prune a backlog or a deployment that serves little "
        "traffic."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="Keep this many days instead of TELEMETRY_RETENTION_DAYS.",
        )
        parser.add_argument("--batch-size", type=int, default=flusher.PRUNE_BATCH_SIZE)

    def handle(self, *args, days, batch_size, **options):
        days = settings.TELEMETRY_RETENTION_DAYS if days is None else days
        if days < 1:
            raise CommandError("--days: keep at least one day")
        if batch_size < 1:
            raise CommandError("--batch-size: must be at least 1")
        # Every app's registered prune job: the telemetry here, the query findings of profiling.
        deleted = flusher.prune(days, batch_size=batch_size)
        summary = ", ".join(f"{count} {name}" for name, count in deleted.items())
        self.stdout.write(f"Deleted telemetry older than {days} days: {summary}.")
