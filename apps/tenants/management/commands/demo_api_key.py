from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.tenants.models import Organization, OrganizationAPIKey


class Command(BaseCommand):
    help = (
        "Create a fresh API key, named for this run, for the first active organization (the demo "
        "data's), and print it with a curl example for --base-url; the key is on the last line."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="where the service answers, for the curl example (default http://127.0.0.1:8000)",
        )
        parser.add_argument(
            "--name", default="", help="the key's name (default: 'make run' and the time)"
        )

    def handle(self, *args, base_url, name, **options):
        organization = Organization.objects.filter(is_active=True).order_by("created_at", "pk")
        organization = organization.first()
        if organization is None:
            raise CommandError("No active organization: load the demo data with `seed_demo`")
        name = name or f"make run {timezone.now():%Y-%m-%d %H:%M:%S} UTC"
        if len(name) > 50:
            raise CommandError("--name: at most 50 characters")
        api_key, key = OrganizationAPIKey.objects.create_key(organization=organization, name=name)
        self.stdout.write(
            f"Demo organization {organization.slug}: new API key {api_key.prefix} ({name}):"
        )
        self.stdout.write(
            f"  curl -H 'Authorization: Bearer {key}' {base_url.rstrip('/')}/api/v1/orders/"
        )
        self.stdout.write(key)
