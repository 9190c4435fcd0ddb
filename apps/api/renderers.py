"""The API's JSON: DRF's renderer, serialising with orjson.

orjson writes the compact UTF-8 JSON DRF writes with its default settings (COMPACT_JSON,
UNICODE_JSON, STRICT_JSON), several times faster than json.dumps; rendering is a visible share of
a list request. What orjson would write differently goes DRF's way:

- values orjson does not know, and dates and times (DRF writes UTC as `Z`), go to DRF's encoder;
- an indent asked for in the Accept header, other JSON settings, integers beyond 64 bits,
  non-string keys and text that is not valid Unicode are rendered by DRF's renderer itself;
- U+2028 and U+2029 are escaped, as DRF escapes them.

One difference is left: a float is written in orjson's shortest form (`1e16`, where json writes
`1e+16`: the same number) and a float that is not finite as `null`, where DRF refuses to render it
(a 500). No serializer of this API writes floats.
"""

import orjson
from rest_framework import renderers

# datetime, date and time, and dataclasses (which DRF's encoder refuses) go to DRF's encoder.
ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
LINE_SEPARATORS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None or not self._orjson_renders_the_same(accepted_media_type, renderer_context):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            rendered = orjson.dumps(
                data, default=self.encoder_class().default, option=ORJSON_OPTIONS
            )
        except orjson.JSONEncodeError:
            return super().render(data, accepted_media_type, renderer_context)
        for character, escaped in LINE_SEPARATORS:
            if character in rendered:
                rendered = rendered.replace(character, escaped)
        return rendered

    def _orjson_renders_the_same(self, accepted_media_type, renderer_context):
        if self.ensure_ascii or not self.compact or not self.strict:
            return False
        if accepted_media_type and "indent" in accepted_media_type:
            return False
        return not (renderer_context or {}).get("indent")
