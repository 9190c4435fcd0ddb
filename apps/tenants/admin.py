from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from apps.tenants.models import Organization, OrganizationAPIKey

# The library registers its own, organization-less key model; this project never uses it.
if admin.site.is_registered(APIKey):
    admin.site.unregister(APIKey)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_at"]
    date_hierarchy = "created_at"


@admin.register(OrganizationAPIKey)
class OrganizationAPIKeyAdmin(APIKeyModelAdmin):
    """The library's admin: a new key is shown once, in a message, and only its hash is kept."""

    list_display = [
        "prefix",
        "name",
        "organization",
        "created",
        "last_used_at",
        "expiry_date",
        "_has_expired",
        "revoked",
    ]
    list_filter = ["revoked", "created", "organization"]
    list_select_related = ["organization"]
    search_fields = ["name", "prefix", "organization__name", "organization__slug"]
    autocomplete_fields = ["organization"]

    def get_readonly_fields(self, request, obj=None):
        fields = (*super().get_readonly_fields(request, obj), "last_used_at")
        if obj is not None:
            # A key never moves to another organization.
            fields = (*fields, "organization")
        return fields
