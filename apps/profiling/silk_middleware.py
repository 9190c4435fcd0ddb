"""silk's middleware, with its recording marked as the profiler's own work, and written in fewer
statements.

silk writes a recorded request through the request's connection: run inside
`request_context.profiler_work()`, none of it counts as the request's queries or duration.

silk itself inserts the request's row before the view runs, updates it once per recorded query
to count it, reads the queries back and updates the row again at the end. Here the row is built
before the view and inserted once after it, with its query count, then the response and the
queries (`write_recording`); silk's own way is kept when the recording holds Python profiles.
A JSON response body is pretty-printed for silk's page by orjson instead of the json module
(`ResponseModelFactory`). Kept apart from apps/profiling/silk.py because silk's middleware module
needs the app registry, and the settings import that module.
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
from silk.middleware import _should_intercept

from apps.common import request_context
from apps.profiling.callsite import pass_through

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


class RequestModelFactory(model_factory.RequestModelFactory):
    """silk's, with the request's row built but not saved: `write_recording` inserts it."""

    def construct_request_model(self):
        body, raw_body = self.body()
        return models.Request(
            path=self.request.path,
            encoded_headers=self.encoded_headers(),
            method=self.request.method,
            query_params=self.query_params(),
            view_name=self.view_name(),
            body=body,
            raw_body=raw_body,
        )


def write_recording(collector, response):
    """The recorded request's row, its response and its queries: one INSERT each.

    silk's DataCollector.finalise saves the queries through a manager that updates the request's
    row once per query to count it, then reads them back to link them to Python profiles; with
    no profiles to link (nor silk's profiling of itself, SILKY_META), the count is set before the
    row's only INSERT.
    """
    silk_request = collector.request
    if (
        collector.profiles
        or getattr(collector.local, "pythonprofiler", None)
        or SilkyConfig().SILKY_META
    ):
        silk_request.save()
        ResponseModelFactory(response).construct_response_model()
        silk_request.end_time = timezone.now()
        collector.finalise()
        silk_request.save()
        return
    queries = []
    for identifier, recorded in collector.queries.items():
        query = models.SQLQuery(identifier=identifier, **recorded)
        if query.end_time and query.start_time:
            query.time_taken = (query.end_time - query.start_time).total_seconds() * 1000
        queries.append(query)
    silk_request.num_sql_queries += len(queries)
    silk_request.end_time = timezone.now()
    silk_request.save()
    ResponseModelFactory(response).construct_response_model()
    # The plain manager: silk's counts each query into the request's row again.
    models.SQLQuery._base_manager.bulk_create(queries)


class SilkyMiddleware(SilkRecordingMiddleware):
    # Around every request's queries: the query inspector must not take them for silk's own.
    @pass_through
    def __call__(self, request):
        # silk's, deciding first: a request silk does not record (all but SILK_SAMPLE_PERCENT)
        # goes straight through, and the collector is emptied after each recording rather than
        # before every request.
        request.silk_filters = {}
        if not _should_intercept(request):
            return self.get_response(request)
        try:
            self.process_request(request)
            return self.process_response(request, self.get_response(request))
        finally:
            DataCollector().clear()

    def process_request(self, request):
        # silk's (silk 5.6) for a request it records, with RequestModelFactory above.
        with request_context.profiler_work():
            DataCollector().clear()
            request.silk_is_intercepted = True
            self._apply_dynamic_mappings()
            config = SilkyConfig()
            should_profile = config.SILKY_PYTHON_PROFILER
            if config.SILKY_PYTHON_PROFILER_FUNC:
                should_profile = config.SILKY_PYTHON_PROFILER_FUNC(request)
            request_model = RequestModelFactory(request).construct_request_model()
            DataCollector().configure(request_model, should_profile=should_profile)

    def process_response(self, request, response):
        with request_context.profiler_work():
            return super().process_response(request, response)

    def _process_response(self, request, response):
        # silk's (silk 5.6), written by write_recording.
        with transaction.atomic(using=router.db_for_write(models.SQLQuery)):
            collector = DataCollector()
            collector.stop_python_profiler()
            if collector.request is None:
                logger.error(
                    "No request model was available when processing response. "
                    "Did something go wrong in process_request/process_view?"
                    f"\n{request}\n\n{response}"
                )
                return
            write_recording(collector, response)
