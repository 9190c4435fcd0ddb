"""The tests' own corner of the Redis they are given: a key prefix of this run and worker.

`REDIS_URL` may name a database that holds other data (a developer's `make run`, another test
run). The tests use the database they are given and no other, under a key prefix of their own,
and clear only the keys under it: never FLUSHDB, which Django's `cache.clear()` is on Redis.
"""

import os
import uuid

from django.conf import settings
from django.core.cache import caches
from django_redis.cache import RedisCache
from django_redis.client.default import glob_escape
from django_redis.util import CacheKey


def key_prefix_of_this_run(worker):
    """`orders-test-<run>-<worker>`: unique to this process, recognisable by whoever finds it."""
    return f"orders-test-{uuid.uuid4().hex[:12]}-{worker}"


def use_own_key_prefix(worker):
    """Points the cache (and the processes this one starts with its environment) at a key prefix of
    this test process."""
    from django.test.signals import setting_changed

    from project.settings import cache_settings

    prefix = key_prefix_of_this_run(worker)
    os.environ["REDIS_KEY_PREFIX"] = prefix
    settings.REDIS_KEY_PREFIX = prefix
    settings.CACHES = cache_settings(settings.REDIS_URL, prefix)
    # Django's own receiver closes the cache connections and rereads CACHES.
    setting_changed.send(sender=type(settings), setting="CACHES", value=settings.CACHES, enter=True)


def clear_own_cache():
    """Empties the cache of this test process: on Redis only the keys under its prefix, of every
    version; in local memory the whole (process-private) cache."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        cache.delete_pattern(CacheKey(f"{glob_escape(settings.REDIS_KEY_PREFIX)}:*"))
    else:
        cache.clear()
