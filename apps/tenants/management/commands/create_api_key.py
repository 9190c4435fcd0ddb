from django.core.management.base import BaseCommand, CommandError

from apps.tenants.models import Organization, OrganizationAPIKey


class Command(BaseCommand):
    help = "Create an API key for an organization; the key is printed once, on the last line."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="slug of the organization")
        parser.add_argument("--name", required=True, help="what the key is for")

    def handle(self, *args, slug, name, **options):
        organization = Organization.objects.filter(slug=slug).first()
        if organization is None:
            raise CommandError(f"No organization with slug {slug!r}")
        if len(name) > 50:
            raise CommandError("--name: at most 50 characters")
        api_key, key = OrganizationAPIKey.objects.create_key(organization=organization, name=name)
        self.stderr.write(
            f"API key {api_key.prefix} for {organization.slug}. Store it now: "
            "it is not shown again."
        )
        self.stdout.write(key)
