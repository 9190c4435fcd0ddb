"""PostgreSQL timestamps read by psycopg's C loader, with Django's time zone handling.

Django reads `timestamptz` through a loader that subclasses psycopg's pure-Python
TimestamptzLoader (Django ticket #36960): even with psycopg's C extension installed, every
timestamp of every row is parsed by a regular expression in Python, a large part of the time a
list page spends reading its rows. The loader here does what Django's does (the time in the
connection's zone, its tzinfo replaced by Django's) but parses with the loader psycopg registers
itself for `timestamptz`: the C one when psycopg-binary or psycopg-c is installed, the Python one
otherwise. The C class cannot be subclassed, hence the delegation.
"""

import functools

from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from psycopg import adapt, adapters
from psycopg.pq import Format

TIMESTAMPTZ_OID = adapters.types["timestamptz"].oid


class DelegatingTzLoader(BaseTzLoader):
    """Django's BaseTzLoader (its `timezone` is what Django compares per cursor), parsing with
    psycopg's own registered loader."""

    def __init__(self, oid, context=None):
        super().__init__(oid, context)
        self._parse = adapters.get_loader(oid, Format.TEXT)(oid, context).load

    def load(self, data):
        return self._parse(data).replace(tzinfo=self.timezone)


@functools.cache
def fast_timestamps(template):
    """Django's adapters `template` (one per time zone setting), its timestamptz loader replaced
    by a DelegatingTzLoader of the same time zone."""
    timezone = template.get_loader(TIMESTAMPTZ_OID, Format.TEXT).timezone
    context = adapt.AdaptersMap(template)
    loader = type("TzLoader", (DelegatingTzLoader,), {"timezone": timezone})
    context.register_loader("timestamptz", loader)
    return context
