"""apps/observability/after_response.py: work done once the server closes the response."""

import contextvars
import gc
import weakref

from django.http import HttpResponse

from apps.observability.after_response import call_after_response

request_marker = contextvars.ContextVar("after_response_test_marker", default=None)


def test_a_responses_work_runs_when_it_is_closed_in_registration_order():
    response = HttpResponse("ok")
    done = []

    call_after_response(response, "first", done.append, "telemetry")
    call_after_response(response, "second", done.append, "access line")
    assert done == []

    response.close()
    assert done == ["telemetry", "access line"]


def test_one_resource_closer_runs_all_of_a_responses_work():
    response = HttpResponse("ok")
    closers_before = len(response._resource_closers)

    call_after_response(response, "first", lambda: None)
    call_after_response(response, "second", lambda: None)

    assert len(response._resource_closers) == closers_before + 1


def test_work_after_a_failed_one_still_runs():
    response = HttpResponse("ok")
    done = []

    def fail():
        raise OSError("disk full")

    call_after_response(response, "failing", fail)
    call_after_response(response, "next", done.append, "ran")
    response.close()

    assert done == ["ran"]


def test_work_sees_the_context_of_the_request_after_it_has_ended():
    response = HttpResponse("ok")
    seen = []
    token = request_marker.set("request-1")
    call_after_response(response, "read", lambda: seen.append(request_marker.get()))
    request_marker.reset(token)

    response.close()

    assert seen == ["request-1"]


def test_a_closed_response_is_freed_without_the_garbage_collector():
    # Work whose arguments hold the response (telemetry's) must not leave a reference cycle:
    # the collector would free the request's whole object graph only when it next runs.
    response = HttpResponse("ok")
    call_after_response(response, "telemetry", lambda response: None, response)
    freed = weakref.ref(response)
    gc.disable()
    try:
        response.close()
        del response
        assert freed() is None
    finally:
        gc.enable()
