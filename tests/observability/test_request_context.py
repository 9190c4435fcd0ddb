"""Request context: the request id (kept, replaced, echoed), the route, and no leaks between
requests, threads or asyncio tasks."""

import asyncio
import re
import threading

import pytest
import structlog
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import resolve

from apps.common.request_context import (
    RequestState,
    current_request_id,
    current_request_state,
    request_id_from_header,
    route_template,
)
from apps.observability.logging.middleware import RequestContextMiddleware
from tests.observability import urls_for_logging
from tests.observability.logging_capture import captured_console, json_lines

pytestmark = pytest.mark.urls("tests.observability.urls_for_logging")
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


def test_sane_incoming_request_id_is_kept_and_echoed():
    response = Client().get("/logging-test/items/1/", headers={"X-Request-ID": "lb-4f2.a_9-Z"})

    assert response.headers["X-Request-ID"] == "lb-4f2.a_9-Z"
    assert response.json()["request_id"] == "lb-4f2.a_9-Z"


@pytest.mark.parametrize(
    "incoming",
    [
        "x" * 129,
        "has space",
        "line\nbreak",
        'quote"d',
        "semi;colon",
        "ünïcode",
        "",
    ],
)
def test_insane_incoming_request_id_is_replaced(incoming):
    response = Client().get("/logging-test/items/1/", headers={"X-Request-ID": incoming})

    assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])


def test_request_without_id_gets_a_new_one_per_request():
    client = Client()
    first = client.get("/logging-test/items/1/").headers["X-Request-ID"]
    second = client.get("/logging-test/items/1/").headers["X-Request-ID"]

    assert GENERATED_ID.fullmatch(first)
    assert GENERATED_ID.fullmatch(second)
    assert first != second


def test_longest_sane_request_id_is_kept():
    assert request_id_from_header("a" * 128) == "a" * 128


def test_route_is_the_url_pattern_not_the_path():
    response = Client().get("/logging-test/items/42/")

    assert response.json()["route"] == "/logging-test/items/<int:pk>/"


@pytest.mark.urls("project.urls")
def test_route_of_a_regex_pattern_names_its_groups():
    assert route_template(resolve("/api/v1/orders/42/")) == "/api/v1/orders/<pk>/"


def test_context_is_gone_after_the_request():
    Client().get("/logging-test/items/1/")

    assert (current_request_id(), current_request_state()) == (None, None)


def test_context_bound_by_a_view_does_not_leak_into_the_next_request():
    client = Client()
    client.get("/logging-test/bind/")
    with captured_console() as console:
        client.get("/logging-test/items/1/")

    lines = json_lines(console.getvalue())
    assert lines
    assert not any("leaked_from_previous_request" in line for line in lines)
    assert structlog.contextvars.get_contextvars() == {}


def test_threads_serving_interleaved_requests_keep_their_own_context():
    responses = {}
    urls_for_logging.rendezvous.reset()

    def serve(name):
        responses[name] = Client().get(f"/logging-test/meet/{name}/")

    threads = [threading.Thread(target=serve, args=(name,)) for name in ("left", "right")]
    with captured_console() as console:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=15)
    lines = json_lines(console.getvalue())

    ids = {name: response.headers["X-Request-ID"] for name, response in responses.items()}
    assert ids["left"] != ids["right"]
    for name, request_id in ids.items():
        assert responses[name].json()["request_id"] == request_id
        mine = [line for line in lines if line.get("name") == name]
        assert [line["event"] for line in mine] == ["before meeting", "after meeting"]
        assert {line["request_id"] for line in mine} == {request_id}


def test_async_requests_interleaved_on_one_loop_keep_their_own_context():
    logger = structlog.get_logger("apps.logging_test")
    both_started = asyncio.Event()
    started = []

    async def view(request):
        name = request.GET["name"]
        logger.info("before await", name=name)
        started.append(name)
        if len(started) == 2:
            both_started.set()
        await both_started.wait()
        logger.info("after await", name=name, seen_id=current_request_id())
        return HttpResponse(current_request_id())

    middleware = RequestContextMiddleware(view)
    factory = RequestFactory()

    async def serve_both():
        return await asyncio.gather(
            middleware(factory.get("/a", {"name": "a"}, headers={"X-Request-ID": "id-a"})),
            middleware(factory.get("/b", {"name": "b"}, headers={"X-Request-ID": "id-b"})),
        )

    with captured_console() as console:
        responses = asyncio.run(serve_both())
    lines = json_lines(console.getvalue())

    assert [response.headers["X-Request-ID"] for response in responses] == ["id-a", "id-b"]
    assert [response.content for response in responses] == [b"id-a", b"id-b"]
    for name in ("a", "b"):
        mine = [line for line in lines if line.get("name") == name]
        assert [line["event"] for line in mine] == ["before await", "after await"]
        assert {line["request_id"] for line in mine} == {f"id-{name}"}


def test_query_stats_count_every_query_but_tell_apart_a_bounded_number_of_statements():
    from apps.common.request_context import MAX_DISTINCT_STATEMENTS, QueryStats

    stats = QueryStats()
    for number in range(MAX_DISTINCT_STATEMENTS + 50):
        stats.add(f"SELECT {number}", 0.001)
    stats.add("SELECT 0", 0.002)

    assert stats.count == MAX_DISTINCT_STATEMENTS + 51
    assert len(stats.statements) == MAX_DISTINCT_STATEMENTS
    assert stats.statements["SELECT 0"] == [2, pytest.approx(0.003)]
    assert "SELECT 250" not in stats.statements


def test_work_waiting_for_the_request_to_finish_runs_once_with_its_final_duration():
    state = RequestState(RequestFactory().get("/"), "id-1")
    seen = []
    state.when_finished(lambda label: seen.append((label, state.duration_ms)), "waiting")

    assert seen == []
    state.finish()
    state.finish()

    assert seen == [("waiting", state.duration_ms)]
    assert state.duration_ms is not None


def test_work_registered_once_the_request_has_finished_runs_at_once():
    state = RequestState(RequestFactory().get("/"), "id-1")
    state.finish()
    seen = []

    state.when_finished(seen.append, "late")

    assert seen == ["late"]
