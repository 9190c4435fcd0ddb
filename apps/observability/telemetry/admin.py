"""Read-only admin for the request statistics: the flusher writes them, nobody edits them.

Each changelist runs a constant number of queries: the models have no relations, and derived
columns (average, error rates) are SQL annotations.
"""

from django.apps import apps
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import F, Sum, Window
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from apps.common.admin import ReadOnlyModelAdmin
from apps.common.units import format_milliseconds
from apps.observability.telemetry.models import ErrorGroup, RequestMinute, SlowRequest, rate


@admin.register(RequestMinute)
class RequestMinuteAdmin(ReadOnlyModelAdmin):
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
class SlowRequestAdmin(ReadOnlyModelAdmin):
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

    fieldsets = [
        (None, {"fields": ["started_at", "method", "route", "path", "status", "request_id"]}),
        ("Cost", {"fields": ["duration", "query_count", "db_time"]}),
        ("Who", {"fields": ["user_id", "organization_id"]}),
        ("Profile and logs", {"fields": ["silk_profile", "top_queries", "log_lines"]}),
    ]
    readonly_fields = [
        *("started_at", "method", "route", "path", "status", "request_id", "duration"),
        *("query_count", "db_time", "user_id", "organization_id"),
        *("silk_profile", "top_queries", "log_lines"),
    ]

    def _recording(self, row):
        """silk's recording of the same request, looked up once per page."""
        if not apps.is_installed("silk"):
            return None
        if not hasattr(row, "_silk_recording"):
            from apps.profiling.silk import recording_of

            row._silk_recording = recording_of(row.method, row.path, row.started_at)
        return row._silk_recording

    @admin.display(description="silk profile")
    def silk_profile(self, row):
        if not apps.is_installed("silk"):
            return "silk is off (SILK_ENABLED)."
        recording = self._recording(row)
        if recording is None:
            return (
                f"silk did not record this request (it records SILK_SAMPLE_PERCENT = "
                f"{settings.SILK_SAMPLE_PERCENT:g} % of them and prunes old ones)."
            )
        url = reverse("silk:request_detail", kwargs={"request_id": recording.pk})
        sql_url = reverse("silk:request_sql", kwargs={"request_id": recording.pk})
        return format_html(
            '<a href="{}" id="silk-profile">silk\'s profile of this request</a> '
            '(<a href="{}">all its queries</a>)',
            url,
            sql_url,
        )

    @admin.display(description="slowest queries (silk)")
    def top_queries(self, row):
        recording = self._recording(row)
        if recording is None:
            return "-"
        from apps.profiling.silk import slowest_queries

        queries = slowest_queries(recording)
        if not queries:
            return "No query."
        rows = format_html_join(
            "",
            '<tr><td class="number">{}</td><td><code>{}</code></td></tr>',
            ((format_milliseconds(query.time_taken), query.query[:500]) for query in queries),
        )
        return format_html('<table id="slow-request-queries">{}</table>', rows)

    @admin.display(description="log lines")
    def log_lines(self, row):
        if not row.request_id:
            return "This request has no request id."
        return format_html(
            "Every log line written while it was served carries "
            '<code>"request_id": "{}"</code>: search your log store for it, or '
            "<code>grep {} $LOG_FILE</code>, or <code>kubectl logs "
            "-l app.kubernetes.io/name=orders-service --all-containers | grep {}</code>. "
            "Its access line (event <code>request</code>) gives its route, status and queries.",
            row.request_id,
            row.request_id,
            row.request_id,
        )

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, row):
        return format_milliseconds(row.duration_ms)

    @admin.display(description="database time", ordering="db_time_ms")
    def db_time(self, row):
        return format_milliseconds(row.db_time_ms)


@admin.register(ErrorGroup)
class ErrorGroupAdmin(ReadOnlyModelAdmin):
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
