"""Read-only admin for the request statistics: the flusher writes them, nobody edits them.

Each changelist runs a constant number of queries: the models have no relations, and derived
columns (average, error rates) are SQL annotations.
"""

from django.contrib import admin, messages
from django.db.models import F, Sum, Window
from django.utils import timezone

from apps.common.admin import ReadOnlyModelAdmin
from apps.common.units import format_milliseconds
from apps.observability.telemetry.models import ErrorGroup, RequestMinute, SlowRequest, rate


class TelemetryAdmin(ReadOnlyModelAdmin):
    class Media:
        css = {"all": ["ops/admin-changelist.css"]}


@admin.register(RequestMinute)
class RequestMinuteAdmin(TelemetryAdmin):
    list_display = [
        "minute",
        "method",
        "route",
        "requests",
        "status_4xx",
        "status_5xx",
        "error_rate",
        "route_error_rate",
        "slow",
        "average",
        "slowest",
        "query_count",
    ]
    list_filter = ["route", "method", ("minute", admin.DateFieldListFilter)]
    date_hierarchy = "minute"
    search_fields = ["route"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                row_error_rate=rate(F("status_5xx"), F("requests")),
                row_average_ms=F("duration_sum_ms") / F("requests"),
                # Over the rows the changelist's filters select, per route.
                route_errors=Window(Sum("status_5xx"), partition_by=[F("route")]),
                route_requests=Window(Sum("requests"), partition_by=[F("route")]),
            )
        )

    @admin.display(description="error rate", ordering="row_error_rate")
    def error_rate(self, row):
        return f"{row.row_error_rate:.2%}"

    @admin.display(description="route error rate (selection)")
    def route_error_rate(self, row):
        if not row.route_requests:
            return "-"
        return f"{row.route_errors / row.route_requests:.2%}"

    @admin.display(description="average", ordering="row_average_ms")
    def average(self, row):
        return format_milliseconds(row.row_average_ms)

    @admin.display(description="slowest", ordering="duration_max_ms")
    def slowest(self, row):
        return format_milliseconds(row.duration_max_ms)


@admin.register(SlowRequest)
class SlowRequestAdmin(TelemetryAdmin):
    list_display = [
        "started_at",
        "method",
        "route",
        "status",
        "duration",
        "query_count",
        "db_time",
        "request_id",
    ]
    list_filter = ["route", "method", "status", ("started_at", admin.DateFieldListFilter)]
    date_hierarchy = "started_at"
    search_fields = ["route", "path", "request_id"]

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, row):
        return format_milliseconds(row.duration_ms)

    @admin.display(description="database time", ordering="db_time_ms")
    def db_time(self, row):
        return format_milliseconds(row.db_time_ms)


@admin.register(ErrorGroup)
class ErrorGroupAdmin(TelemetryAdmin):
    list_display = [
        "exception_class",
        "frame",
        "route",
        "count",
        "status",
        "first_seen",
        "last_seen",
        "last_request_id",
    ]
    list_filter = ["status", "route", ("last_seen", admin.DateFieldListFilter)]
    date_hierarchy = "last_seen"
    search_fields = ["exception_class", "frame", "route", "sample_message", "last_request_id"]
    actions = ["resolve"]

    @admin.action(description="Mark selected error groups as resolved")
    def resolve(self, request, queryset):
        updated = queryset.filter(status=ErrorGroup.Status.OPEN).update(
            status=ErrorGroup.Status.RESOLVED, resolved_at=timezone.now()
        )
        self.message_user(
            request,
            f"{updated} error group(s) resolved; they reopen if the error happens again.",
            messages.SUCCESS,
        )
