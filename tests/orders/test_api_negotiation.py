"""The API's content negotiation picks the renderer and media type DRF's own negotiation picks,
and answers the common request without parsing its Accept header."""

import pytest
from django.http import Http404
from rest_framework import exceptions, renderers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from apps.api.negotiation import ContentNegotiation
from apps.api.renderers import JSONRenderer

RENDERER_LISTS = {
    "production": [JSONRenderer()],
    "development": [JSONRenderer(), renderers.BrowsableAPIRenderer()],
}


def request_with(accept=None, query=""):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    return Request(APIRequestFactory().get(f"/api/v1/orders/{query}", **headers))


def negotiated(negotiation, request, renderer_list, format_suffix=None):
    try:
        renderer, media_type = negotiation.select_renderer(request, renderer_list, format_suffix)
    except exceptions.NotAcceptable:
        return "406"
    except Http404:  # a format no renderer has
        return "404"
    return type(renderer), media_type


@pytest.mark.parametrize("renderer_list", RENDERER_LISTS.values(), ids=RENDERER_LISTS)
@pytest.mark.parametrize(
    ("accept", "query", "format_suffix"),
    [
        (None, "", None),
        ("*/*", "", None),
        ("application/json", "", None),
        ("application/json; indent=4", "", None),
        ("application/*", "", None),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "", None),
        ("text/html", "", None),
        ("text/csv", "", None),
        ("", "", None),
        ("*/*", "?format=json", None),
        ("*/*", "?format=api", None),
        ("*/*", "?format=", None),
        (None, "?format=csv", None),
        ("*/*", "", "json"),
        ("*/*", "", "api"),
    ],
)
def test_the_renderer_and_media_type_are_drfs(renderer_list, accept, query, format_suffix):
    request = request_with(accept, query)
    ours = negotiated(ContentNegotiation(), request, renderer_list, format_suffix)

    assert ours == negotiated(DefaultContentNegotiation(), request, renderer_list, format_suffix)


@pytest.mark.parametrize("accept", [None, "*/*", "application/json"])
def test_a_request_for_any_type_or_json_is_answered_without_parsing_its_header(monkeypatch, accept):
    def parsed(negotiation, request):
        raise AssertionError("the Accept header was parsed")

    monkeypatch.setattr(ContentNegotiation, "_get_parsed_accept_list", parsed)

    assert negotiated(ContentNegotiation(), request_with(accept), RENDERER_LISTS["production"]) == (
        JSONRenderer,
        "application/json",
    )
