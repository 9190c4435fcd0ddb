"""API keys this process has already checked, so that a request with one needs no query.

Each entry is held under the SHA-512 of the key sent (so only the right secret finds it) with the
key's state token from the shared cache (Redis). Every save or delete of an API key, or a save of
its organization, replaces that token once its transaction commits (`bump`), and a request uses
its entry only when the token it finds is still the entry's: a revoked, edited or deleted key, or
a deactivated organization, stops working on the next request, in every process.
Changes that bypass the models' signals (a queryset `update()`, SQL), or whose new token Redis
could not take, are seen within KNOWN_KEY_SECONDS, when the entry is read again from the database.

The check of the token, the client address's failure count (lock-outs), the last-use guard and
the hit of the view's per-key throttle windows are one Lua script: one Redis round trip. Without
Redis (local memory is each process's own, so a change would not reach the other processes) or
when Redis fails, nothing is kept and every request reads its key from the database, as it did
before.
"""

import hashlib
import secrets
import time
from dataclasses import dataclass

from django.core.cache import cache, caches
from django.db import transaction
from django_redis.cache import RedisCache
from redis.exceptions import RedisError

from apps.tenants.rate_limits import WINDOW_HIT_LUA

# Bounds how long a change made without the models' signals may go unseen.
KNOWN_KEY_SECONDS = 60
# Entries kept per process; beyond it the oldest half is dropped.
MAX_KNOWN_KEYS = 1000

# KEYS: failure count, key-state token, last-use guard, then the count and end of each throttle
# window; ARGV: failure limit, expected token, guard timeout, then each window's period and end.
# Returns {failures, token matches, guard added, each window's count}: the windows are hit only
# for a current key of an address that is not locked out.
CHECK_SCRIPT = (
    WINDOW_HIT_LUA
    + """
local failures = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if failures >= tonumber(ARGV[1]) then
    return {failures, 0, 0}
end
if redis.call('GET', KEYS[2]) ~= ARGV[2] then
    return {failures, 0, 0}
end
local added = redis.call('SET', KEYS[3], '1', 'NX', 'EX', tonumber(ARGV[3]))
local result = {failures, 1, added and 1 or 0}
for window = 4, #KEYS, 2 do
    result[#result + 1] = window_hit(KEYS[window], KEYS[window + 1], ARGV[window], ARGV[window + 1])
end
return result
"""
)


@dataclass(frozen=True)
class Check:
    """What the script found: the failure count, whether the entry is current, whether this
    request took the last-use guard, and the count of each window it hit."""

    failures: int
    current: bool
    guard_taken: bool
    window_counts: tuple = ()


@dataclass(frozen=True)
class Entry:
    api_key: object
    token: str
    read_at: float


_entries = {}
_script = None


def shared():
    """Whether the cache is Redis, shared by every process (entries are kept only then)."""
    return isinstance(caches["default"], RedisCache)


def digest(key):
    return hashlib.sha512(key.encode()).hexdigest()


def token_key(prefix):
    return f"api-key-state:{prefix}"


def get(key):
    """The entry of this key, if one is kept and was read from the database recently."""
    entry = _entries.get(digest(key))
    if entry is None or time.monotonic() - entry.read_at > KNOWN_KEY_SECONDS:
        return None
    return entry


def current_token(prefix):
    """The key's state token, or None (none yet, or the cache is down). Read before the key
    itself, so that a change committed after this read has replaced it."""
    token = cache.get(token_key(prefix))
    return None if token is None else str(token)


def keep(key, api_key, token):
    """Keeps a key just read from the database with the token read before it. Without one, a
    token is made now (only for keys found valid: Redis holds no key per guess), and the key kept
    only if no change made one since the read (`add` succeeds only where no `bump` came first)."""
    if token is None:
        token = secrets.randbits(62)
        if not cache.add(token_key(api_key.prefix), token, timeout=None):
            return
        token = str(token)
    if len(_entries) >= MAX_KNOWN_KEYS:
        for stale in list(_entries)[: MAX_KNOWN_KEYS // 2]:
            _entries.pop(stale, None)
    _entries[digest(key)] = Entry(api_key, token, time.monotonic())


def forget(key):
    _entries.pop(digest(key), None)


def check(entry, failures_key, failure_limit, guard_key, guard_seconds, windows=()):
    """One round trip: the failure count, whether `entry` is current, the last-use guard and,
    when the key is current, one hit of each of the rate-limit `windows` (FixedWindow); None when
    Redis cannot be reached (the caller then reads the key from the database)."""
    global _script
    keys = [failures_key, token_key(entry.api_key.prefix), guard_key]
    args = [failure_limit, entry.token, guard_seconds]
    for window in windows:
        window_keys, window_args = window.script_keys_and_arguments()
        keys += window_keys
        args += window_args
    try:
        client = cache.client.get_client(write=True)
        if _script is None:
            _script = client.register_script(CHECK_SCRIPT)
        failures, current, taken, *counts = _script(
            keys=[cache.make_key(key) for key in keys], args=args, client=client
        )
    except (RedisError, OSError):
        return None
    return Check(int(failures), bool(current), bool(taken), tuple(int(count) for count in counts))


def bump(prefixes):
    """New state tokens for these keys: every process's entries of them go stale."""
    cache.set_many({token_key(prefix): secrets.randbits(62) for prefix in prefixes}, timeout=None)


def bump_on_commit(prefixes):
    if not shared():
        return
    prefixes = list(prefixes)
    if prefixes:
        transaction.on_commit(lambda: bump(prefixes))


def key_changed(sender, instance, **kwargs):
    """post_save and post_delete of an API key."""
    bump_on_commit([instance.prefix])


def organization_changed(sender, instance, **kwargs):
    """post_save of an organization (deleting one deletes its keys, each signalled)."""
    if kwargs.get("created") or not shared():
        return
    bump_on_commit(instance.api_keys.values_list("prefix", flat=True))
