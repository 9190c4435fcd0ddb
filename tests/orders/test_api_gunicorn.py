"""The API under gunicorn, as deployed: what reaches it is what a client sent.

gunicorn decodes chunked bodies itself and hands them over without a Content-Length; a client
nesting JSON as deep as it likes must still get an answer in the API's shape.
"""

import json

import pytest
import requests

from tests.migrated_databases import migrate
from tests.processes import project_environment, run_manage, running_gunicorn

pytestmark = [pytest.mark.system, pytest.mark.backend_independent]


def chunks(body, size=7):
    """A body requests sends with `Transfer-Encoding: chunked` (a generator has no length)."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.fixture(scope="module")
def api_server(tmp_path_factory):
    """(base URL, API key headers) of gunicorn serving a fresh SQLite database."""
    workdir = tmp_path_factory.mktemp("api-gunicorn")
    environment = project_environment(
        DJANGO_ENV="test", DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}", WEB_CONCURRENCY=1
    )
    for completed in (
        migrate(environment),
        run_manage("create_organization", "chunked", "--name", "Chunked", environment=environment),
    ):
        assert completed.returncode == 0, completed.stdout + completed.stderr
    completed = run_manage("create_api_key", "chunked", "--name", "tests", environment=environment)
    assert completed.returncode == 0, completed.stderr
    key = completed.stdout.strip().splitlines()[-1]
    with running_gunicorn(environment, log_path=workdir / "gunicorn.log") as server:
        yield server.base_url, {"Authorization": f"Bearer {key}"}


def test_a_chunked_json_body_is_read(api_server):
    base_url, headers = api_server
    body = json.dumps({"email": "chunked@example.com", "name": "Sent in chunks"}).encode()

    response = requests.post(
        f"{base_url}/api/v1/customers/",
        data=chunks(body),
        headers={**headers, "Content-Type": "application/json"},
        timeout=10,
    )

    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "Sent in chunks"


def test_deeply_nested_json_is_a_json_400(api_server):
    base_url, headers = api_server
    body = '{"email": "deep@example.com", "name": ' + "[" * 950 + "]" * 950 + "}"

    response = requests.post(
        f"{base_url}/api/v1/customers/",
        data=body,
        headers={**headers, "Content-Type": "application/json"},
        timeout=10,
    )

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "parse_error"
