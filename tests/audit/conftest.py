import pytest
from django.db import connection
from django.utils import timezone

from apps.audit.report import CRITICAL, Scope

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="reads PostgreSQL (set DATABASE_URL)"
)


def scope(minutes=60, instances=1, fail_on=CRITICAL, now=None):
    return Scope(minutes, instances, fail_on, now or timezone.now())


def finding(findings, identifier):
    """The one finding with this id (the test fails listing the ids when there is none)."""
    matching = [item for item in findings if item.id == identifier]
    assert len(matching) == 1, [item.id for item in findings]
    return matching[0]


def ids(findings):
    return [item.id for item in findings]


# The servers of the gunicorn test, as the observability tests start them.
from tests.observability.conftest import (  # noqa: E402, F401
    metrics_token,
    sqlite_database_url,
    start_gunicorn,
)
