from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_slug

from apps.tenants.models import Organization


class Command(BaseCommand):
    help = "Create an organization (tenant)."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="unique short name, letters, digits, - and _")
        parser.add_argument("--name", required=True, help="display name")

    def handle(self, *args, slug, name, **options):
        try:
            validate_slug(slug)
        except ValidationError:
            raise CommandError(f"{slug!r} is not a valid slug (letters, digits, - and _)") from None
        if Organization.objects.filter(slug=slug).exists():
            raise CommandError(f"An organization with slug {slug!r} already exists")
        organization = Organization.objects.create(slug=slug, name=name)
        self.stdout.write(f"Created organization {organization.slug} (id {organization.pk})")
