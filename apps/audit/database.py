"""Reading the primary database for the checks: its vendor and rows as dicts."""

from django.db import connections

ALIAS = "default"


def connection(alias=ALIAS):
    return connections[alias]


def is_postgres(alias=ALIAS):
    return connections[alias].vendor == "postgresql"


def fetch(sql, params=(), alias=ALIAS):
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def describe(alias=ALIAS):
    """The database as the report names it: vendor, host and name, never the password."""
    settings_dict = connections[alias].settings_dict
    if connections[alias].vendor == "sqlite":
        return f"SQLite file {settings_dict['NAME']}"
    host = settings_dict.get("HOST") or "local socket"
    port = settings_dict.get("PORT") or 5432
    return f"PostgreSQL {settings_dict['NAME']} at {host}:{port}"
