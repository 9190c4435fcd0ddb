"""JSON request bodies for every JSON endpoint: bounded in size and in nesting."""

import json

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from apps.api.exceptions import PayloadTooLarge

# Deeper than any body this API takes, and far enough from Python's recursion limit that the
# serializers, redaction and rendering that walk a body recursively never reach it.
MAX_JSON_NESTING = 32
NESTING_ERROR = f"Malformed JSON: nested deeper than {MAX_JSON_NESTING} levels."


class LimitedJSONParser(JSONParser):
    """JSON bodies up to DATA_UPLOAD_MAX_MEMORY_SIZE (DJANGO_MAX_BODY_BYTES), else 413, and
    nested at most MAX_JSON_NESTING levels, else 400.

    DRF reads the body stream itself, so Django's own limit never applies to JSON requests.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        if request is not None:
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared = 0
            if limit is not None and declared > limit:
                raise PayloadTooLarge()
        raw = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(raw) > limit:
            raise PayloadTooLarge()
        try:
            data = json.loads(raw.decode(settings.DEFAULT_CHARSET))
        except RecursionError:
            raise ParseError(NESTING_ERROR) from None
        except (ValueError, UnicodeError) as error:
            raise ParseError(f"Malformed JSON: {error}") from None
        if _may_nest_deeper(raw) and nesting_depth_exceeds(data, MAX_JSON_NESTING):
            raise ParseError(NESTING_ERROR)
        try:
            # Lone surrogates ("\ud800") parse but cannot be stored: refuse them here.
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeError as error:
            raise ParseError(f"Malformed JSON: {error}") from None
        return data


def _may_nest_deeper(raw):
    # Counting brackets runs at C speed and spares walking the usual, shallow body.
    return raw.count(b"[") + raw.count(b"{") > MAX_JSON_NESTING


def nesting_depth_exceeds(data, limit):
    """Whether parsed JSON nests lists and objects deeper than `limit` levels, found without
    recursion (a top-level object is one level)."""
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
