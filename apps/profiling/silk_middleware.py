"""silk's middleware, with its recording marked as the profiler's own work.

Before the view silk saves the request's row, after it the response, the queries and the request
again, all through the request's connection: run inside `request_context.profiler_work()`, none of
it counts as the request's queries or duration. A JSON response body is pretty-printed for silk's
page by orjson instead of the json module (`ResponseModelFactory`). Kept apart from
apps/profiling/silk.py because silk's middleware module needs the app registry, and the settings
import that module.
"""

import logging
import re
import sys

import orjson
from django.db import router, transaction
from django.utils import timezone
from silk import model_factory, models
from silk.collector import DataCollector
from silk.config import SilkyConfig
from silk.middleware import SilkyMiddleware as SilkRecordingMiddleware
from silk.profiling.profiler import silk_meta_profiler

from apps.common import request_context

logger = logging.getLogger("silk.middleware")

# A run of 20 digits or more may be an integer beyond 64 bits, which orjson reads as a float.
_LONG_DIGIT_RUN = re.compile(rb"\d{20}")
_PRETTY_JSON = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS


class ResponseModelFactory(model_factory.ResponseModelFactory):
    """silk's, with a JSON body pretty-printed in C.

    silk parses the body and indents it again with the json module's pure-Python encoder (an
    indent turns its C encoder off): for a page of fifty orders, most of what recording the
    response costs. orjson writes the same document with sorted keys, indented by two spaces
    instead of four. Anything orjson would not render exactly (non-ASCII text while silk escapes
    it, NaN, integers beyond 64 bits) goes through silk's own code.
    """

    def body(self):
        content_type, _ = model_factory._parse_content_type(self.response.get("content-type", ""))
        content = getattr(self.response, "content", b"")
        config = SilkyConfig()
        max_size = config.SILKY_MAX_RESPONSE_BODY_SIZE
        if (
            not isinstance(content, bytes)
            or not content
            or content_type not in model_factory.content_types_parseable
            or (max_size > -1 and sys.getsizeof(content) > max_size)
            or (config.SILKY_JSON_ENSURE_ASCII and not content.isascii())
            or _LONG_DIGIT_RUN.search(content)
        ):
            return super().body()
        try:
            return orjson.dumps(orjson.loads(content), option=_PRETTY_JSON).decode(), content
        except orjson.JSONDecodeError:
            return super().body()


class SilkyMiddleware(SilkRecordingMiddleware):
    def process_request(self, request):
        with request_context.profiler_work():
            return super().process_request(request)

    def process_response(self, request, response):
        with request_context.profiler_work():
            return super().process_response(request, response)

    def _process_response(self, request, response):
        # silk's (silk 5.6), with ResponseModelFactory above instead of silk's.
        with transaction.atomic(using=router.db_for_write(models.SQLQuery)):
            with silk_meta_profiler():
                collector = DataCollector()
                collector.stop_python_profiler()
                silk_request = collector.request
                if silk_request:
                    ResponseModelFactory(response).construct_response_model()
                    silk_request.end_time = timezone.now()
                    collector.finalise()
                else:
                    logger.error(
                        "No request model was available when processing response. "
                        "Did something go wrong in process_request/process_view?"
                        f"\n{request}\n\n{response}"
                    )
            if silk_request:
                silk_request.save()
