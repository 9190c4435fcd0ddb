from django.contrib import admin, messages

from apps.common.admin import ReadOnlyModelAdmin
from apps.orders import services
from apps.orders.models import (
    Customer,
    IdempotencyRecord,
    Order,
    OrderLine,
    OrderNumberSequence,
    Product,
)


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["email", "name", "organization", "created_at"]
    list_filter = ["organization"]
    list_select_related = ["organization"]
    search_fields = ["email", "name"]
    autocomplete_fields = ["organization"]
    readonly_fields = ["created_at"]
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "organization", "price", "stock", "is_active"]
    list_filter = ["is_active", "organization"]
    list_select_related = ["organization"]
    list_editable = ["is_active"]
    search_fields = ["sku", "name"]
    autocomplete_fields = ["organization"]
    readonly_fields = ["created_at"]
    show_full_result_count = False


class OrderLineInline(admin.TabularInline):
    """Lines are priced and stocked by create_order; here they are shown, not edited."""

    model = OrderLine
    fields = ["product", "quantity", "unit_price", "line_total"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("product")


def _run_transition(modeladmin, request, queryset, transition, done):
    succeeded = 0
    for order in queryset.order_by("pk"):
        try:
            transition(order)
        except services.OrderError as error:
            modeladmin.message_user(request, str(error), messages.ERROR)
        else:
            succeeded += 1
    if succeeded:
        modeladmin.message_user(request, f"{succeeded} order(s) {done}.", messages.SUCCESS)


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    """Orders are created by the API (create_order); staff move them along with the actions."""

    list_display = [
        "number",
        "organization",
        "customer",
        "status",
        "total",
        "currency",
        "line_count",
        "created_at",
    ]
    list_filter = ["status", "organization"]
    list_select_related = ["organization", "customer"]
    search_fields = ["number", "customer__email", "customer__name"]
    date_hierarchy = "created_at"
    inlines = [OrderLineInline]
    actions = ["pay_orders", "ship_orders", "cancel_orders"]
    readonly_fields = [
        "organization",
        "customer",
        "number",
        "status",
        "currency",
        "total",
        "created_at",
        "updated_at",
        "paid_at",
        "shipped_at",
        "cancelled_at",
    ]
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).with_line_count()

    @admin.display(description="lines", ordering="line_count")
    def line_count(self, order):
        return order.line_count

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        # Orders are cancelled (which restocks), never deleted: a delete would cascade to the
        # lines without restocking, and lose the record. Superusers included.
        return False

    @admin.action(description="Pay selected orders", permissions=["change"])
    def pay_orders(self, request, queryset):
        _run_transition(self, request, queryset, services.pay, "paid")

    @admin.action(description="Ship selected orders", permissions=["change"])
    def ship_orders(self, request, queryset):
        _run_transition(self, request, queryset, services.ship, "shipped")

    @admin.action(description="Cancel selected orders (restocks)", permissions=["change"])
    def cancel_orders(self, request, queryset):
        _run_transition(self, request, queryset, services.cancel, "cancelled")


# Internal tables: written by the API, read by staff when a client asks what happened.
@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyModelAdmin):
    list_display = ["key", "organization", "status_code", "created_at"]
    list_filter = ["status_code", "organization"]
    list_select_related = ["organization"]
    search_fields = ["key"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "organization",
        "key",
        "request_hash",
        "status_code",
        "response_body",
        "created_at",
    ]
    show_full_result_count = False


@admin.register(OrderNumberSequence)
class OrderNumberSequenceAdmin(ReadOnlyModelAdmin):
    list_display = ["organization", "last_number"]
    list_select_related = ["organization"]
    search_fields = ["organization__name", "organization__slug"]
    readonly_fields = ["organization", "last_number"]
