import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

PRUNE_BATCH_SIZE = 500


def _delete_batches(next_batch):
    """Delete requests (with their responses, queries and profiles) batch by batch.

    `next_batch()` returns the ids of the next batch, re-evaluated after each deletion.
    """
    from silk.models import Request

    deleted = 0
    while ids := list(next_batch()):
        Request.objects.filter(id__in=ids).delete()
        deleted += len(ids)
    return deleted


class Command(BaseCommand):
    help = (
        "Delete silk's recorded requests beyond the newest SILKY_MAX_RECORDED_REQUESTS (and, with "
        "--older-than-days, older ones), in batches. Replaces silk's garbage collection on the "
        "request path; run it from cron or a Kubernetes CronJob."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--keep",
            type=int,
            default=None,
            help="Keep this many newest requests instead of SILKY_MAX_RECORDED_REQUESTS.",
        )
        parser.add_argument(
            "--older-than-days",
            type=int,
            default=None,
            help="Also delete every request recorded more than this many days ago.",
        )
        parser.add_argument("--batch-size", type=int, default=PRUNE_BATCH_SIZE)

    def handle(self, *args, keep, older_than_days, batch_size, **options):
        if not getattr(settings, "SILK_ENABLED", False):
            raise CommandError("silk is not installed (SILK_ENABLED is off): nothing to prune")
        from silk.models import Request

        keep = settings.SILKY_MAX_RECORDED_REQUESTS if keep is None else keep
        if keep < 0:
            raise CommandError("--keep: must be 0 or more")
        if batch_size < 1:
            raise CommandError("--batch-size: must be at least 1")
        if older_than_days is not None and older_than_days < 0:
            raise CommandError("--older-than-days: must be 0 or more")

        deleted = 0
        if older_than_days is not None:
            cutoff = timezone.now() - dt.timedelta(days=older_than_days)
            old = Request.objects.filter(start_time__lt=cutoff).values_list("id", flat=True)
            deleted += _delete_batches(lambda: old.order_by("start_time", "id")[:batch_size])
        newest_first = Request.objects.order_by("-start_time", "-id").values_list("id", flat=True)
        deleted += _delete_batches(lambda: newest_first[keep : keep + batch_size])
        self.stdout.write(f"Deleted {deleted} silk requests; at most {keep} are kept.")
