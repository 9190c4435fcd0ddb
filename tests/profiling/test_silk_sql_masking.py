"""What silk stores of each recorded query: the statement and its plan, never the values bound to
it (session keys and data, password hashes, API key hashes, CSRF tokens held in sessions)."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import connection
from silk.models import SQLQuery

from apps.tenants.models import OrganizationAPIKey
from tests.orders.factories import make_organization

pytestmark = pytest.mark.django_db

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's plans show values (set DATABASE_URL)"
)
PASSWORD = "irrelevant-pass-7c1d"


@pytest.fixture(autouse=True)
def record_everything(settings):
    settings.SILK_SAMPLE_PERCENT = 100.0


def stored_sql():
    """Every recorded statement, plan and traceback, as the silk tables hold them."""
    return [
        text
        for row in SQLQuery.objects.values_list("query", "analysis", "traceback")
        for text in row
        if text
    ]


def sign_in(client, username, **flags):
    get_user_model().objects.create_user(username, password=PASSWORD, is_staff=True, **flags)
    response = client.post("/admin/login/", {"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.content[:500]
    return client.cookies["sessionid"].value


def test_a_recorded_sign_in_stores_no_session_key_or_session_data(client):
    session_key = sign_in(client, "staff")
    session_data = Session.objects.get(session_key=session_key).session_data

    statements = SQLQuery.objects.values_list("query", flat=True)
    assert any("django_session" in statement for statement in statements)
    assert not any(session_key in text for text in stored_sql())
    assert not any(session_data in text for text in stored_sql())


@on_postgresql
def test_a_recorded_plan_shows_no_session_key(client):
    session_key = sign_in(client, "staff")

    plans = SQLQuery.objects.filter(query__contains="django_session").values_list(
        "analysis", flat=True
    )
    assert any(plan and "django_session" in plan for plan in plans)
    assert not any(session_key in (plan or "") for plan in plans)


def test_a_recorded_password_change_stores_no_password_hash(client):
    sign_in(client, "root", is_superuser=True)
    user = get_user_model().objects.create_user("someone", password="old-password-1f3b")
    new_password = "new-password-8e2a-long-enough"

    response = client.post(
        f"/admin/auth/user/{user.pk}/password/",
        {"password1": new_password, "password2": new_password, "usable_password": "true"},
    )

    assert response.status_code == 302, response.content[:2000]
    user.refresh_from_db()
    assert user.check_password(new_password)
    assert any("auth_user" in text and "password" in text for text in stored_sql())
    assert not any(user.password in text for text in stored_sql())


def test_a_recorded_api_key_creation_stores_no_key_hash(client):
    sign_in(client, "root", is_superuser=True)
    organization = make_organization()

    response = client.post(
        "/admin/tenants/organizationapikey/add/", {"name": "ci", "organization": organization.pk}
    )

    assert response.status_code == 302, response.content[:2000]
    hashed_key = OrganizationAPIKey.objects.get(name="ci").hashed_key
    assert any("hashed_key" in text for text in stored_sql())
    assert not any(hashed_key in text for text in stored_sql())


def test_recorded_statements_keep_their_shape_and_numbers(client):
    sign_in(client, "staff")
    user_id = get_user_model().objects.get(username="staff").pk

    statements = list(SQLQuery.objects.values_list("query", flat=True))
    by_username = '"auth_user"."username" = %s'
    by_id = re.compile(rf'"auth_user"\."id" = {user_id}\b')
    assert any(by_username in statement for statement in statements), statements
    assert any(by_id.search(statement) for statement in statements), statements
