import datetime as dt

from django.core.exceptions import ValidationError
from rest_framework import exceptions
from rest_framework.pagination import CursorPagination


def database_datetime(value):
    """The datetime in UTC: PostgreSQL refuses offsets beyond ±15:59, which ISO 8601 allows."""
    try:
        return value.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise exceptions.ValidationError("Date and time out of range.") from None


class ApiCursorPagination(CursorPagination):
    """Cursor pages: no COUNT(*), stable under inserts; `page_size` is clamped to 100.

    A malformed or edited cursor is a 400 on the `cursor` parameter.
    """

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
    ordering = "-id"

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound:
            raise self._invalid() from None
        if cursor is None or cursor.position is None:
            return cursor
        # The position is compared with the ordering field: check it is a valid value of that
        # field, or an edited cursor would reach the database as a malformed value.
        field = self._model._meta.get_field(self.ordering[0].lstrip("-"))
        try:
            if "\x00" in cursor.position:
                raise ValidationError("NUL character")
            value = field.clean(cursor.position, None)
            if isinstance(value, dt.datetime):
                database_datetime(value)
        except (
            ValidationError,
            exceptions.ValidationError,
            ValueError,
            TypeError,
            ArithmeticError,
        ):
            raise self._invalid() from None
        return cursor

    def _invalid(self):
        return exceptions.ValidationError({self.cursor_query_param: [self.invalid_cursor_message]})
