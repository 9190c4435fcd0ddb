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


def test_demo_api_key_prints_a_working_key_and_a_curl_for_the_given_base_url():
    organization = Organization.objects.create(slug="demo-1", name="Demo")
    out, _ = run("demo_api_key", "--base-url", "http://127.0.0.1:8011")

    key = out.strip().splitlines()[-1]
    assert f"curl -H 'Authorization: Bearer {key}' http://127.0.0.1:8011/api/v1/orders/" in out
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/api/v1/orders/").status_code == 200
    assert OrganizationAPIKey.objects.get_from_key(key).organization == organization


def test_demo_api_key_makes_a_new_key_named_for_each_run():
    Organization.objects.create(slug="demo-1", name="Demo")
    first, _ = run("demo_api_key")
    second, _ = run("demo_api_key")

    assert first.splitlines()[-1] != second.splitlines()[-1]
    assert OrganizationAPIKey.objects.filter(name__startswith="make run ").count() == 2


def test_demo_api_key_without_an_organization_says_to_seed():
    with pytest.raises(CommandError, match="seed_demo"):
        run("demo_api_key")
