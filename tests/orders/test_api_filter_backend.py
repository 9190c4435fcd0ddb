"""The API's django-filter backend builds no filter form for a query that names no filter, and
keeps django-filter's answers when one is named."""

import pytest
from django_filters import rest_framework as filters

from apps.api.filters import names_a_filter
from apps.orders.api.filters import OrderFilter

pytestmark = [pytest.mark.django_db, pytest.mark.no_nplusone]

URL = "/api/v1/orders/"


@pytest.fixture
def forms_built(monkeypatch):
    built = []
    form_class = OrderFilter.get_form_class

    def counted(filterset):
        built.append(filterset)
        return form_class(filterset)

    monkeypatch.setattr(OrderFilter, "get_form_class", counted)
    return built


def test_a_list_without_filter_parameters_builds_no_filter_form(api, forms_built):
    assert api.get(URL, {"page_size": 5}).status_code == 200
    assert forms_built == []


@pytest.mark.parametrize("query", [{"status": "bogus"}, {"status": ""}, {"customer": "0"}])
def test_a_named_filter_goes_through_the_form(api, forms_built, query):
    response = api.get(URL, query)
    assert len(forms_built) == 1
    assert response.status_code == (200 if query == {"status": ""} else 400)


def test_a_widget_suffix_names_its_filter():
    class Ranged(filters.FilterSet):
        total = filters.RangeFilter()

    assert names_a_filter({"total_min": "1"}, Ranged.base_filters)
    assert not names_a_filter({"totals": "1"}, Ranged.base_filters)


def test_a_required_filter_is_always_named():
    class Required(filters.FilterSet):
        status = filters.CharFilter(required=True)

    assert names_a_filter({}, Required.base_filters)
