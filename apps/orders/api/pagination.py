from apps.api.pagination import ApiCursorPagination


class OrderCursorPagination(ApiCursorPagination):
    # Served by the (organization, -created_at, -id) index.
    ordering = ("-created_at", "-id")
