from django_filters import rest_framework as filters


class DjangoFilterBackend(filters.DjangoFilterBackend):
    """django-filter's backend, skipping the filter set when the query names none of its filters.

    Without such a parameter every filter that is not required keeps the rows as they are, so
    building and validating the filter set's form would change nothing but the time it takes.
    """

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None and not names_a_filter(
            request.query_params, filterset_class.base_filters
        ):
            return queryset
        return super().filter_queryset(request, queryset, view)


def names_a_filter(query_params, base_filters):
    """Whether a parameter may reach a filter: its name, or its name with a widget's suffix
    (`_min`, `_after`...); a required filter always counts as named."""
    for name, base_filter in base_filters.items():
        if base_filter.extra.get("required"):
            return True
        if any(param == name or param.startswith(f"{name}_") for param in query_params):
            return True
    return False
