"""The API's content negotiation: DRF's, answering the request most clients send without parsing."""

from rest_framework.negotiation import DefaultContentNegotiation

ANY_MEDIA_TYPE = "*/*"


class ContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, with a shortcut for a request with no Accept header, `*/*` or exactly the
    first renderer's media type, and no format override: DRF picks the first renderer with its own
    media type then, after parsing the header and each renderer's media type (a visible share of
    a small API request's time). Every other request is negotiated by DRF."""

    def select_renderer(self, request, renderers, format_suffix=None):
        accept = request.META.get("HTTP_ACCEPT", ANY_MEDIA_TYPE)
        if (
            renderers
            and accept in (ANY_MEDIA_TYPE, renderers[0].media_type)
            and not format_suffix
            and not request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
        ):
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)
