from django.core.cache import cache
from django.db import models
from django.utils import timezone
from rest_framework_api_key.models import AbstractAPIKey, BaseAPIKeyManager

# last_used_at is written at most once per key and interval, not on every request.
LAST_USED_WRITE_INTERVAL_SECONDS = 60


class Organization(models.Model):
    """A client organization (tenant); every domain row belongs to exactly one."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["is_active", "name"], name="tenants_org_active_name")]

    def __str__(self):
        return self.name


class OrganizationAPIKeyManager(BaseAPIKeyManager):
    def get_usable_keys(self):
        # The organization comes along with the key: every API request needs it.
        return (
            super()
            .get_usable_keys()
            .filter(organization__is_active=True)
            .select_related("organization")
        )


class OrganizationAPIKey(AbstractAPIKey):
    """An API key of one organization: stored hashed, only the 8-character prefix in clear."""

    objects = OrganizationAPIKeyManager()

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_keys"
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"
        indexes = [
            models.Index(fields=["organization", "created"], name="tenants_key_org_created"),
        ]

    @property
    def last_use_guard(self):
        return f"api-key-used:{self.pk}"

    def record_use(self):
        """Store the time of use, at most once per interval per key (a cache add guards it)."""
        if cache.add(self.last_use_guard, 1, timeout=LAST_USED_WRITE_INTERVAL_SECONDS):
            self.write_last_use()

    def write_last_use(self):
        """Store the time of use; the caller took the guard of record_use."""
        now = timezone.now()
        type(self).objects.filter(pk=self.pk).update(last_used_at=now)
        self.last_used_at = now
