"""silk's middleware, with its recording marked as the profiler's own work.

Before the view silk saves the request's row, after it the response, the queries and the request
again, all through the request's connection: run inside `request_context.profiler_work()`, none of
it counts as the request's queries or duration. Kept apart from apps/profiling/silk.py because
silk's middleware module needs the app registry, and the settings import that module.
"""

from silk.middleware import SilkyMiddleware as SilkRecordingMiddleware

from apps.common import request_context


class SilkyMiddleware(SilkRecordingMiddleware):
    def process_request(self, request):
        with request_context.profiler_work():
            return super().process_request(request)

    def process_response(self, request, response):
        with request_context.profiler_work():
            return super().process_response(request, response)
