"""The landing page at /: what the service is, a link to each of its parts, the version."""

import re

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db


def links_of(response):
    return set(re.findall(r'href="(/[^"]*)"', response.content.decode()))


def test_the_landing_page_answers_without_signing_in(client):
    response = client.get("/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


def test_the_landing_page_links_the_api_its_docs_the_admin_ops_pages_and_probes(client):
    links = links_of(client.get("/"))

    expected = {"/api/v1/", "/api/docs/", "/api/schema/", "/admin/", "/admin/ops/", "/silk/"}
    expected |= {"/health", "/ready", "/health-detailed", "/metrics", "/stats"}
    assert expected <= links


def test_every_link_of_the_landing_page_answers_a_superuser(superuser_client):
    pages = {
        link for link in links_of(superuser_client.get("/")) if not link.startswith("/static/")
    }
    for link in pages:
        assert superuser_client.get(link).status_code == 200, link


def test_the_landing_page_shows_the_version(client):
    response = client.get("/")

    assert f"Version {settings.GIT_SHA}" in response.content.decode()


def test_the_admins_view_site_link_leads_to_the_landing_page(superuser_client):
    response = superuser_client.get("/admin/")

    assert 'href="/"' in response.content.decode()
    assert superuser_client.get("/").status_code == 200


def test_the_admin_header_shows_the_version(superuser_client):
    response = superuser_client.get("/admin/")

    assert f"version {settings.GIT_SHA}</span>" in response.content.decode()
