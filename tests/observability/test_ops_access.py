"""Who may see the ops side: staff holding observability.view_ops (the "Ops" group, superusers).

Being staff is not enough: a staff member without the permission gets 403 from every ops page,
JSON endpoint and silk, and the admin index does not link the ops pages.
"""

import importlib

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.urls import reverse
from silk.models import SQLQuery

from tests.observability.conftest import grant_ops_permission

pytestmark = [pytest.mark.django_db, pytest.mark.no_nplusone]

JSON_ENDPOINTS = ["/stats", "/health-detailed", "/metrics"]
OPS_PAGES = [
    "/admin/ops/",
    "/admin/ops/routes/",
    "/admin/ops/routes/route/?route=/api/v1/orders/&method=GET",
    "/admin/ops/database/",
    "/admin/ops/database/statements/",
]
SILK_PAGES = ["/silk/", "/silk/requests/", "/silk/profiling/"]
EVERY_OPS_PATH = [*JSON_ENDPOINTS, *OPS_PAGES, *SILK_PAGES]
OPS_LINKS = ("ops:overview", "ops:routes", "ops:database", "ops:statements")


def view_ops():
    return Permission.objects.get(content_type__app_label="observability", codename="view_ops")


def ops_group_migration():
    return importlib.import_module("apps.observability.migrations.0004_ops_permission")


@pytest.fixture
def staff_without_permission(client):
    staff = get_user_model().objects.create_user("support", password="irrelevant", is_staff=True)
    client.force_login(staff)
    return client


@pytest.fixture
def staff_with_permission(client):
    staff = get_user_model().objects.create_user("ops", password="irrelevant", is_staff=True)
    client.force_login(grant_ops_permission(staff))
    return client


@pytest.fixture
def superuser(client):
    root = get_user_model().objects.create_superuser("root", "root@example.com", "irrelevant")
    client.force_login(root)
    return client


@pytest.mark.parametrize("path", EVERY_OPS_PATH)
def test_staff_without_the_ops_permission_get_403(staff_without_permission, path):
    assert staff_without_permission.get(path).status_code == 403


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_the_403_of_a_json_endpoint_is_in_the_api_error_shape(staff_without_permission, path):
    error = staff_without_permission.get(path).json()["error"]

    assert error["code"] == "forbidden"
    assert "observability.view_ops" in error["message"]


@pytest.mark.parametrize("path", EVERY_OPS_PATH)
def test_staff_with_the_ops_permission_may_read(staff_with_permission, path):
    assert staff_with_permission.get(path).status_code == 200


@pytest.mark.parametrize("path", EVERY_OPS_PATH)
def test_superusers_may_read(superuser, path):
    assert superuser.get(path).status_code == 200


def test_staff_without_the_ops_permission_cannot_open_a_recorded_query(
    staff_without_permission, settings
):
    settings.SILK_SAMPLE_PERCENT = 100.0
    staff_without_permission.get("/admin/")
    query = SQLQuery.objects.exclude(request=None).first()

    response = staff_without_permission.get(f"/silk/request/{query.request_id}/sql/{query.pk}/")

    assert response.status_code == 403


def test_the_admin_index_hides_the_ops_links_without_the_permission(staff_without_permission):
    html = staff_without_permission.get("/admin/").content.decode()

    assert 'id="ops-dashboards"' not in html
    assert not any(f'href="{reverse(name)}"' in html for name in OPS_LINKS)


def test_the_admin_index_links_the_ops_pages_with_the_permission(staff_with_permission):
    html = staff_with_permission.get("/admin/").content.decode()

    assert all(f'href="{reverse(name)}"' in html for name in OPS_LINKS)


def test_the_data_migration_creates_an_ops_group_holding_the_permission():
    Group.objects.filter(name="Ops").delete()

    ops_group_migration().create_ops_group(apps, connection.schema_editor())

    assert view_ops() in Group.objects.get(name="Ops").permissions.all()


def test_a_member_of_the_ops_group_may_read(client):
    ops_group_migration().create_ops_group(apps, connection.schema_editor())
    staff = get_user_model().objects.create_user("on-call", password="irrelevant", is_staff=True)
    staff.groups.add(Group.objects.get(name="Ops"))
    client.force_login(staff)

    assert client.get("/admin/ops/").status_code == 200
