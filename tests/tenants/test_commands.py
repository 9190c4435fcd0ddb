import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from apps.tenants.models import Organization, OrganizationAPIKey

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_create_organization():
    run("create_organization", "acme", "--name", "Acme Inc")
    organization = Organization.objects.get(slug="acme")
    assert (organization.name, organization.is_active) == ("Acme Inc", True)


def test_create_organization_refuses_a_taken_slug():
    run("create_organization", "acme", "--name", "Acme")
    with pytest.raises(CommandError, match="already exists"):
        run("create_organization", "acme", "--name", "Acme again")


def test_create_organization_refuses_an_invalid_slug():
    with pytest.raises(CommandError, match="not a valid slug"):
        run("create_organization", "no spaces", "--name", "x")


def test_create_api_key_prints_a_working_key_alone_on_the_last_line():
    run("create_organization", "acme", "--name", "Acme")
    out, _ = run("create_api_key", "acme", "--name", "shop")
    key = out.strip().splitlines()[-1]
    api_key = OrganizationAPIKey.objects.get(organization__slug="acme")
    assert api_key.name == "shop"
    assert key.startswith(api_key.prefix + ".")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/api/v1/products/").status_code == 200


def test_create_api_key_for_an_unknown_organization_fails():
    with pytest.raises(CommandError, match="No organization"):
        run("create_api_key", "nobody", "--name", "x")
