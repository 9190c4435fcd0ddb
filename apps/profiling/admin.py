"""Query findings for staff: read-only but for their status, which the actions set in bulk.

The flusher writes the rows (apps/profiling/findings.py). The changelist runs a constant number
of queries: the model has no relations, and the silk link is built from the row alone.
"""

from django.apps import apps
from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from apps.common.units import format_milliseconds
from apps.profiling.models import QueryFinding


@admin.register(QueryFinding)
class QueryFindingAdmin(admin.ModelAdmin):
    list_display = [
        "kind",
        "callsite",
        "source",
        "occurrences",
        "max_repeats",
        "total_time",
        "slowest",
        "last_seen",
        "status",
        "silk_request",
    ]
    list_filter = ["kind", "status", "source", ("last_seen", admin.DateFieldListFilter)]
    search_fields = ["callsite", "source", "fingerprint"]
    date_hierarchy = "last_seen"
    actions = ["acknowledge", "ignore", "mark_fixed", "reopen"]
    fields = [
        "kind",
        "status",
        "status_changed_at",
        "callsite",
        "source",
        "sample_sql",
        "fingerprint",
        "occurrences",
        "max_repeats",
        "total_ms",
        "max_ms",
        "first_seen",
        "last_seen",
        "last_request_id",
        "silk_request",
    ]
    readonly_fields = [field for field in fields if field != "status"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="total time", ordering="total_ms")
    def total_time(self, finding):
        return format_milliseconds(finding.total_ms)

    @admin.display(description="slowest", ordering="max_ms")
    def slowest(self, finding):
        return format_milliseconds(finding.max_ms)

    @admin.display(description="silk")
    def silk_request(self, finding):
        if not finding.silk_request_id or not apps.is_installed("silk"):
            return "-"
        url = reverse("silk:request_detail", kwargs={"request_id": finding.silk_request_id})
        return format_html('<a href="{}">recorded request</a>', url)

    def save_model(self, request, obj, form, change):
        if "status" in form.changed_data:
            obj.status_changed_at = timezone.now()
        super().save_model(request, obj, form, change)

    def _set_status(self, request, queryset, status, message):
        updated = queryset.exclude(status=status).update(
            status=status, status_changed_at=timezone.now()
        )
        self.message_user(request, message.format(count=updated), messages.SUCCESS)

    @admin.action(description="Acknowledge selected findings")
    def acknowledge(self, request, queryset):
        self._set_status(
            request, queryset, QueryFinding.Status.ACKNOWLEDGED, "{count} finding(s) acknowledged."
        )

    @admin.action(description="Ignore selected findings")
    def ignore(self, request, queryset):
        self._set_status(
            request,
            queryset,
            QueryFinding.Status.IGNORED,
            "{count} finding(s) ignored; they stay ignored when seen again.",
        )

    @admin.action(description="Mark selected findings as fixed")
    def mark_fixed(self, request, queryset):
        self._set_status(
            request,
            queryset,
            QueryFinding.Status.FIXED,
            "{count} finding(s) marked fixed; they become new again if seen after now.",
        )

    @admin.action(description="Reopen selected findings (new)")
    def reopen(self, request, queryset):
        self._set_status(request, queryset, QueryFinding.Status.NEW, "{count} finding(s) reopened.")
