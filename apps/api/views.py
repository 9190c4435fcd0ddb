"""What the project's API views add to DRF's."""

import functools


class ReleasedOnCloseMixin:
    """An API view whose request's objects are freed as soon as the server closes the response.

    DRF links a request's view, its DRF request, its response and their serializers both ways
    (view.request and the request's parser context, view.response and the response's renderer
    context, a list serializer and its child, a serializer and its fields): every object of the
    request, a page's rows included, waits in reference cycles for the garbage collector, whose
    passes over them are a noticeable share of a list request's CPU (bench/README.md). Nothing
    reads those links once the response is sent: they are cut when it is closed, and reference
    counting frees the rest. The response keeps its data (the test client reads it after closing).
    """

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        # Django runs and then drops a response's resource closers when it is closed.
        response._resource_closers.append(functools.partial(cut_request_links, self, response))
        return response


def cut_request_links(view, response):
    """Cut the links that hold a served request's view, DRF request, response and serializers in
    reference cycles."""
    request = view.__dict__.get("request")
    parser_context = getattr(request, "parser_context", None)
    if parser_context:
        parser_context.pop("view", None)
        parser_context.pop("request", None)
    renderer_context = response.__dict__.get("renderer_context")
    if renderer_context:
        renderer_context.pop("view", None)
        renderer_context.pop("response", None)
    for serializer in serializers_of(response.__dict__.get("data")):
        serializer.__dict__.clear()
    view.__dict__.clear()


def serializers_of(data):
    """The serializers behind a response's data: a ReturnList's or ReturnDict's, those of a page's
    values (its `results`), and a list serializer's child."""
    values = [data, *data.values()] if isinstance(data, dict) else [data]
    found = []
    for value in values:
        serializer = getattr(value, "serializer", None)
        if serializer is not None:
            found.append(serializer)
            child = serializer.__dict__.get("child")
            if child is not None:
                found.append(child)
    return found
