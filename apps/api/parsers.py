import json

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from apps.api.exceptions import PayloadTooLarge


class LimitedJSONParser(JSONParser):
    """JSON bodies up to DATA_UPLOAD_MAX_MEMORY_SIZE (DJANGO_MAX_BODY_BYTES), else 413.

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
            # Lone surrogates ("\ud800") parse but cannot be stored: refuse them here.
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except (ValueError, UnicodeError) as error:
            raise ParseError(f"Malformed JSON: {error}") from None
        return data
