"""`manage.py ensure_superuser`, which `make run` calls to print the admin login."""

from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.test import RequestFactory

pytestmark = pytest.mark.django_db


def ensure_superuser(monkeypatch, password=None):
    if password is None:
        monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", password)
    output = StringIO()
    call_command("ensure_superuser", stdout=output)
    return output.getvalue()


def logs_in(password):
    # django-axes, which watches every login, needs the request a login comes with.
    request = RequestFactory().post("/admin/login/")
    return authenticate(request, username="admin", password=password) is not None


def test_generated_password_is_printed_and_logs_in(monkeypatch):
    output = ensure_superuser(monkeypatch)
    password = output.split("password ")[1].split()[0]
    assert logs_in(password)
    assert get_user_model().objects.get(username="admin").is_superuser


def test_password_from_the_environment_is_used_and_not_printed(monkeypatch):
    output = ensure_superuser(monkeypatch, password="a-long-local-password")
    assert "a-long-local-password" not in output
    assert logs_in("a-long-local-password")


def test_second_run_keeps_the_password_and_does_not_print_it(monkeypatch):
    first = ensure_superuser(monkeypatch)
    password = first.split("password ")[1].split()[0]
    second = ensure_superuser(monkeypatch)
    assert password not in second
    assert logs_in(password)


def test_environment_password_resets_an_existing_admin(monkeypatch):
    ensure_superuser(monkeypatch)
    ensure_superuser(monkeypatch, password="the-new-local-password")
    assert logs_in("the-new-local-password")
