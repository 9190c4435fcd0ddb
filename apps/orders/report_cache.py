"""What keeps a report fresh after a write: a cache version per organization, and a short
while during which its reports read the primary.

A write of an organization's orders (services, once committed) bumps the organization's report
version: every cached report of the organization is keyed by it, so one write retires all of
them, whatever their date ranges and parameters, without listing or deleting keys (a version
costs one small key per organization; deleting would need a scan of Redis' keys). The write also
marks the organization for DB_REPLICA_STICKY_SECONDS, or the current lag of the replicas if that
is longer: its reports read the primary meanwhile, so a report right after a write shows it.

Both live in the shared cache, so every process sees them. With the cache down (it fails open)
no write is seen: reports read a replica in rotation and are not cached either.
"""

import time

from django.core.cache import cache

from apps.common import replicas

VERSION_KEY = "reports:version:{organization_id}"
WROTE_KEY = "reports:wrote:{organization_id}"


def organization_changed(organization_id):
    """An order of the organization changed: new report version, primary for a while."""
    sticky_seconds = max(replicas.sticky_seconds(), 0)
    cache.set(VERSION_KEY.format(organization_id=organization_id), time.time_ns(), None)
    if sticky_seconds:
        cache.set(WROTE_KEY.format(organization_id=organization_id), 1, sticky_seconds)


def report_scope(organization_id):
    """(the organization's report version, whether its reports must read the primary)."""
    version_key = VERSION_KEY.format(organization_id=organization_id)
    wrote_key = WROTE_KEY.format(organization_id=organization_id)
    values = cache.get_many([version_key, wrote_key])
    return values.get(version_key, 0), wrote_key in values
