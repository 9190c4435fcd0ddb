"""The API's JSON renderer writes the bytes DRF's own JSONRenderer writes."""

import dataclasses
import datetime as dt
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils.translation import gettext_lazy
from rest_framework import renderers as drf_renderers

from apps.api.renderers import JSONRenderer
from tests.orders.factories import make_customer, make_product

PARIS = ZoneInfo("Europe/Paris")


@dataclasses.dataclass
class Point:
    x: int


def both(data, accepted_media_type="application/json", renderer_context=None):
    ours = JSONRenderer().render(data, accepted_media_type, renderer_context)
    drfs = drf_renderers.JSONRenderer().render(data, accepted_media_type, renderer_context)
    return ours, drfs


@pytest.mark.parametrize(
    "data",
    [
        {"text": 'Zoë O\'Brien "quoted" back\\slash / slash', "empty": "", "none": None},
        {"control": "tab\tnew\nline\rcarriage\x00nul\x1f unit\x7f del"},
        {"separators": "line\u2028paragraph\u2029end", "emoji": "\U0001f600"},
        {"ints": [0, -1, 2**63 - 1, -(2**63)], "bools": [True, False]},
        {"utc": dt.datetime(2026, 12, 4, 23, 5, 7, 123456, tzinfo=dt.UTC)},
        {"paris": dt.datetime(2026, 7, 1, 12, 0, tzinfo=PARIS), "naive": dt.datetime(2026, 1, 1)},
        {"date": dt.date(2026, 2, 28), "time": dt.time(8, 30, 1), "span": dt.timedelta(hours=1)},
        {"decimal": Decimal("12.50"), "uuid": uuid.UUID(int=1234567890)},
        {"lazy": gettext_lazy("This field is required."), "tuple": (1, "two")},
        {"nested": [{"a": [{"b": {"c": []}}]}], "order": {"z": 1, "a": 2}},
        [],
        "",
    ],
)
def test_any_value_renders_as_drf_renders_it(data):
    ours, drfs = both(data)

    assert ours == drfs


@pytest.mark.parametrize(
    "data",
    [
        {"big": 2**64},
        {1: "integer key"},
        {"surrogate": "\ud800"},
    ],
)
def test_what_orjson_refuses_renders_or_fails_as_drf_does(data):
    try:
        drfs = drf_renderers.JSONRenderer().render(data, "application/json")
    except UnicodeError as error:
        with pytest.raises(type(error)):
            JSONRenderer().render(data, "application/json")
    else:
        assert JSONRenderer().render(data, "application/json") == drfs


def test_a_value_drf_cannot_render_fails_as_in_drf():
    for renderer in (JSONRenderer(), drf_renderers.JSONRenderer()):
        with pytest.raises(TypeError):
            renderer.render({"point": Point(1)}, "application/json")


@pytest.mark.parametrize("accepted", ["application/json; indent=4", "application/json; indent=0"])
def test_an_indent_asked_for_is_honoured_as_in_drf(accepted):
    data = {"results": [{"id": 1, "total": "3.00"}]}

    ours, drfs = both(data, accepted)

    assert ours == drfs


def test_no_data_renders_nothing():
    assert JSONRenderer().render(None) == b""


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/orders/?page_size=3", "/api/v1/orders/1/"])
def test_an_api_response_is_the_bytes_drf_would_render(api, organization, path):
    customer = make_customer(organization, name="Zoë\u2028O'Brien")
    product = make_product(organization, stock=10)
    for _ in range(4):
        created = api.post(
            "/api/v1/orders/",
            {"customer": customer.pk, "lines": [{"product": product.pk, "quantity": 1}]},
            format="json",
        )
        assert created.status_code == 201, created.content
    path = path.replace("/1/", f"/{created.json()['id']}/")

    response = api.get(path)

    assert response.status_code == 200
    assert isinstance(response.accepted_renderer, JSONRenderer)
    assert response.content == drf_renderers.JSONRenderer().render(
        response.data, response.accepted_media_type, response.renderer_context
    )
