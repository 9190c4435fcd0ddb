import datetime as dt

import psycopg
import pytest
from django.db import connection
from psycopg import sql
from psycopg.pq import Format

from apps.common.timestamps import TIMESTAMPTZ_OID, DelegatingTzLoader, fast_timestamps

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="psycopg's loaders"),
]

# Microseconds, a DST change, historical offsets with seconds (Paris before 1911), the largest
# timestamp Python holds, read in sessions east and west of UTC with odd offsets.
TIMESTAMPS = [
    "2026-12-04 21:30:00.123456+00",
    "2026-03-29 01:30:00+00",
    "2026-10-25 00:59:59.999999+00",
    "1900-01-01 00:00:00+00",
    "1970-01-01 00:00:00+00",
    "9999-12-30 23:59:59.999999+00",
]
SESSION_TIME_ZONES = ["UTC", "Europe/Paris", "Asia/Kathmandu", "America/St_Johns"]


def django_adapters(use_tz):
    from django.db.backends.postgresql.psycopg_any import get_adapters_template

    return get_adapters_template(use_tz, dt.UTC if use_tz else None)


def read_timestamps(context, session_time_zone):
    """TIMESTAMPS as a psycopg connection with these adapters reads them: (wall time, tzinfo)."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params["context"] = context
    with psycopg.connect(**params, autocommit=True) as raw:
        raw.execute(sql.SQL("SET TIME ZONE {}").format(sql.Literal(session_time_zone)))
        rows = raw.execute(
            "SELECT value::timestamptz FROM unnest(%s::text[]) AS value", [TIMESTAMPS]
        ).fetchall()
    return [(value.replace(tzinfo=None), value.tzinfo) for (value,) in rows]


@pytest.mark.parametrize("use_tz", [True, False], ids=["USE_TZ", "naive"])
@pytest.mark.parametrize("session_time_zone", SESSION_TIME_ZONES)
def test_timestamps_read_as_djangos_own_loader_reads_them(use_tz, session_time_zone):
    template = django_adapters(use_tz)

    assert read_timestamps(fast_timestamps(template), session_time_zone) == read_timestamps(
        template, session_time_zone
    )


def test_the_connections_cursors_parse_timestamps_with_psycopgs_registered_loader():
    with connection.cursor() as cursor:
        loader = cursor.cursor.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
        registered = psycopg.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)

        assert issubclass(loader, DelegatingTzLoader)
        assert type(loader(TIMESTAMPTZ_OID, cursor.cursor)._parse.__self__) is registered
        if psycopg.pq.__impl__ in ("binary", "c"):
            # The C loader, which Django's loader (a Python subclass) never reaches.
            assert registered.__module__ != "psycopg.types.datetime"


def test_a_model_reads_its_timestamps_through_the_project_loader_unchanged():
    from apps.tenants.models import Organization

    organization = Organization.objects.create(name="Timestamps", slug="timestamps")
    organization.refresh_from_db()

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT created_at::text FROM tenants_organization WHERE id = %s", [organization.pk]
        )
        (text,) = cursor.fetchone()
    assert organization.created_at.tzinfo is dt.UTC
    assert organization.created_at == dt.datetime.fromisoformat(text)
