"""End to end: gunicorn in production mode with LOG_FILE, the way ops run it."""

import time

import pytest
import requests

from tests.observability import canaries
from tests.observability.logging_capture import ACCESS_LOGGER, json_lines
from tests.processes import production_environment, wait_until

pytestmark = [pytest.mark.system, pytest.mark.backend_independent]

LOG_WAIT_SECONDS = 10


def without_content_type(headers):
    return {name: value for name, value in headers.items() if name != "Content-Type"}


def logging_test_environment(database_url, **overrides):
    """Production settings serving the logging test views on SQLite, two threads a worker."""
    return production_environment(
        DJANGO_SETTINGS_MODULE="tests.observability.settings_for_logging",
        DATABASE_URL=database_url,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="false",
        GUNICORN_THREADS="2",
        **overrides,
    )


def wait_for_access_lines(path, request_ids):
    """The file's lines once it holds an access line for every request id (bounded wait)."""
    deadline = time.monotonic() + LOG_WAIT_SECONDS
    while True:
        lines = json_lines(path.read_text()) if path.exists() else []
        logged = {line.get("request_id") for line in lines if line.get("logger") == ACCESS_LOGGER}
        if set(request_ids) <= logged or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def test_gunicorn_in_production_logs_json_lines_with_request_ids_and_no_secret(
    start_gunicorn, sqlite_database_url, tmp_path
):
    log_file = tmp_path / "orders.log"
    server = start_gunicorn(logging_test_environment(sqlite_database_url, LOG_FILE=log_file))

    query, headers, body = canaries.request_arguments()
    api = requests.post(
        f"{server.base_url}/api/v1/orders/{query}",
        json=body,
        headers=without_content_type(headers),
        timeout=10,
    )
    query, headers, body = canaries.request_arguments(bearer=canaries.BEARER_TOKEN)
    failure = requests.post(
        f"{server.base_url}/logging-test/boom/{query}",
        json=body,
        headers=without_content_type(headers),
        timeout=10,
    )
    item = requests.get(
        f"{server.base_url}/logging-test/items/9/",
        headers={"X-Request-ID": "e2e-item-9"},
        timeout=10,
    )
    responses = {"api": api, "failure": failure, "item": item}
    assert {name: response.status_code for name, response in responses.items()} == {
        "api": 401,
        "failure": 500,
        "item": 200,
    }
    assert item.headers["X-Request-ID"] == "e2e-item-9"
    ids = {name: response.headers["X-Request-ID"] for name, response in responses.items()}

    file_lines = wait_for_access_lines(log_file, ids.values())
    console_lines = json_lines(server.log())

    for name, request_id in ids.items():
        (access,) = [
            line
            for line in file_lines
            if line["logger"] == ACCESS_LOGGER and line.get("request_id") == request_id
        ]
        assert access["status"] == responses[name].status_code
    item_lines = [line for line in file_lines if line.get("request_id") == "e2e-item-9"]
    assert {line["event"] for line in item_lines} == {
        "stdlib line for item 9",
        "structlog line",
        "request",
    }
    assert "gunicorn.access" not in {line["logger"] for line in file_lines + console_lines}
    assert any(line["logger"] == "gunicorn.error" for line in console_lines)
    assert canaries.found_in(log_file.read_text()) == []
    assert canaries.found_in(server.log()) == []


def test_a_worker_writes_its_buffered_access_lines_while_it_serves(
    start_gunicorn, sqlite_database_url
):
    # Production's default LOG_ACCESS_BUFFER_SECONDS: each worker's writer thread writes the
    # lines it holds, with no exit and no further request to push them out.
    server = start_gunicorn(logging_test_environment(sqlite_database_url))
    response = server.get("/logging-test/items/3/", headers={"X-Request-ID": "buffered-e2e"})
    assert response.status_code == 200

    def access_lines_of_the_request():
        return [
            line
            for line in json_lines(server.log())
            if line.get("logger") == ACCESS_LOGGER and line.get("request_id") == "buffered-e2e"
        ]

    found = wait_until(access_lines_of_the_request, LOG_WAIT_SECONDS, step=0.1)
    assert len(found) == 1, server.log()[-3000:]
    (line,) = found
    assert (line["path"], line["status"]) == ("/logging-test/items/3/", 200)
