from django import forms
from django.db.models import Value
from django.db.models.functions import Lower
from django_filters import rest_framework as filters
from rest_framework import exceptions
from rest_framework.filters import SearchFilter

from apps.api.pagination import database_datetime
from apps.orders.models import Customer, Order, Product

MAX_ID = 2**63 - 1


class IdFilter(filters.NumberFilter):
    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


def money_filter(lookup_expr):
    return filters.NumberFilter(
        field_name="price", lookup_expr=lookup_expr, max_digits=12, decimal_places=2, min_value=0
    )


class UTCDateTimeFilter(filters.IsoDateTimeFilter):
    """An ISO 8601 bound, compared in UTC; its errors are reported under `parameter`, the query
    parameter the client sent (not the model field)."""

    def __init__(self, *args, parameter, **kwargs):
        self.parameter = parameter
        super().__init__(*args, **kwargs)

    def filter(self, queryset, value):
        if value is not None:
            try:
                value = database_datetime(value)
            except exceptions.ValidationError as error:
                raise exceptions.ValidationError({self.parameter: error.detail}) from None
        return super().filter(queryset, value)


class SafeSearchFilter(SearchFilter):
    """DRF's search, refusing NUL characters (PostgreSQL rejects them in a query)."""

    def get_search_terms(self, request):
        value = request.query_params.get(self.search_param, "")
        if "\x00" in value:
            raise exceptions.ValidationError(
                {self.search_param: ["Null characters are not allowed."]}
            )
        if len(value) > 200:
            raise exceptions.ValidationError({self.search_param: ["At most 200 characters."]})
        return super().get_search_terms(request)


class CustomerFilter(filters.FilterSet):
    email = filters.CharFilter(method="filter_email", max_length=254, label="email (any case)")

    class Meta:
        model = Customer
        fields = ["email"]

    def filter_email(self, queryset, name, value):
        # Lower-cased as the unique constraint compares emails, so that at most one customer
        # matches and its index serves the lookup.
        return queryset.alias(folded_email=Lower("email")).filter(folded_email=Lower(Value(value)))


class ProductFilter(filters.FilterSet):
    sku = filters.CharFilter(max_length=64)
    min_price = money_filter("gte")
    max_price = money_filter("lte")
    in_stock = filters.BooleanFilter(method="filter_in_stock", label="in stock")

    class Meta:
        model = Product
        fields = ["sku", "is_active", "min_price", "max_price", "in_stock"]

    def filter_in_stock(self, queryset, name, value):
        return queryset.filter(stock__gt=0) if value else queryset.filter(stock=0)


class OrderFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=Order.Status.choices)
    customer = IdFilter(field_name="customer_id")
    # Two filters, not one range: an error names the parameter that was wrong.
    created_after = UTCDateTimeFilter(
        field_name="created_at", lookup_expr="gte", parameter="created_after"
    )
    created_before = UTCDateTimeFilter(
        field_name="created_at", lookup_expr="lte", parameter="created_before"
    )

    class Meta:
        model = Order
        fields = ["status", "customer", "created_after", "created_before"]
