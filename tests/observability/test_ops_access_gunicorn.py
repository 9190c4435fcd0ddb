"""The silk session theft, tried against gunicorn on PostgreSQL and Redis, recording every request.

A superuser signs in and browses the admin. A staff member without the ops permission then looks
for the superuser's session key in silk's SQL pages, and in silk's tables themselves, to reach
/admin/auth/user/ with it. Every step must fail.
"""

import os
import re

import psycopg
import pytest
import requests
from django.db import connection

from tests.observability.conftest import (
    environment_for_test_mode,
    prepare_staff_database,
    sign_in_as_staff,
)
from tests.processes import fresh_postgres_database, run_manage

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the exploit was found on PostgreSQL, whose query plans show values; "
        "set DATABASE_URL",
    ),
]

NOSY_USERNAME = "nosy-support"
NOSY_PASSWORD = "nosy-support-password-4b7e"
SESSION_KEY_SHAPE = re.compile(r"\b[a-z0-9]{32}\b")


@pytest.fixture
def service_database():
    """A fresh database on the pass's server, migrated, with the staff superuser; dropped after."""
    name = f"orders_silk_exploit_{os.getpid()}"
    with fresh_postgres_database(connection.settings_dict, name) as url:
        prepare_staff_database(url)
        yield url


def add_staff_without_permissions(database_url):
    created = run_manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; "
        f"get_user_model().objects.create_user({NOSY_USERNAME!r}, password={NOSY_PASSWORD!r}, "
        "is_staff=True)",
        environment=environment_for_test_mode(DATABASE_URL=database_url),
    )
    assert created.returncode == 0, created.stdout + created.stderr


def test_staff_without_the_ops_permission_cannot_steal_a_session_through_silk(
    service_database, redis_server, start_gunicorn
):
    add_staff_without_permissions(service_database)
    server = start_gunicorn(
        environment_for_test_mode(
            DATABASE_URL=service_database, REDIS_URL=redis_server.url, SILK_SAMPLE_PERCENT="100"
        )
    )
    superuser = sign_in_as_staff(server.base_url)
    for path in ("/admin/", "/admin/auth/user/", "/admin/auth/group/"):
        assert superuser.get(f"{server.base_url}{path}", timeout=30).status_code == 200
    stolen_key = superuser.cookies["sessionid"]
    nosy = sign_in_as_staff(server.base_url, NOSY_USERNAME, NOSY_PASSWORD)

    with psycopg.connect(service_database) as database:
        recorded = database.execute(
            "SELECT request_id, id, query, analysis, traceback FROM silk_sqlquery"
            " WHERE request_id IS NOT NULL"
        ).fetchall()
        session_keys = [
            key for (key,) in database.execute("SELECT session_key FROM django_session")
        ]
    session_queries = [row for row in recorded if "django_session" in row[2]]
    assert session_queries, "silk recorded no query on the sessions"

    # Step 1: silk's pages, down to the SQL of each query on the sessions.
    for path in ("/silk/", "/silk/requests/"):
        assert nosy.get(f"{server.base_url}{path}", timeout=30).status_code == 403
    for request_id, query_id, *_ in session_queries:
        page = nosy.get(f"{server.base_url}/silk/request/{request_id}/sql/{query_id}/", timeout=30)
        assert page.status_code == 403

    # Step 2: silk's tables read directly hold no session key, in any statement or plan.
    stored = [text for row in recorded for text in row[2:] if text]
    assert stolen_key in session_keys
    assert not any(key in text for key in session_keys for text in stored)

    # Step 3: whatever in them looks like a session key opens nothing.
    candidates = {match for text in stored for match in SESSION_KEY_SHAPE.findall(text)}
    for candidate in candidates:
        response = requests.get(
            f"{server.base_url}/admin/auth/user/",
            cookies={"sessionid": candidate},
            allow_redirects=False,
            timeout=30,
        )
        assert response.status_code != 200
