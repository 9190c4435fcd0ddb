"""Keys checked before are taken from the process's entries (apps.tenants.known_keys), on Redis:
the pass's REDIS_URL, or a private Redis when the pass has none."""

import datetime as dt
import time

import pytest
import redis.connection
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from apps.tenants import known_keys
from apps.tenants.brute_force import APIKeyFailures
from apps.tenants.models import OrganizationAPIKey
from apps.tenants.throttling import APIKeyRateThrottle
from project.settings import cache_settings
from tests.observability.conftest import REDIS_SERVER, ThrowawayRedis
from tests.orders.factories import make_api_key
from tests.own_cache import clear_own_cache, key_prefix_of_this_run

pytestmark = [pytest.mark.django_db, pytest.mark.no_nplusone]

URL = "/api/v1/customers/"


@pytest.fixture
def shared_cache(settings, tmp_path):
    server = None
    url = settings.REDIS_URL
    if not url:
        if REDIS_SERVER is None:
            pytest.skip("needs Redis: REDIS_URL or redis-server on PATH")
        server = ThrowawayRedis(tmp_path)
        server.start()
        url = server.url
    known_keys._entries.clear()
    prefix = key_prefix_of_this_run("known-keys")
    # Through pytest-django's `settings`, which later changes in the test go through too: an
    # override_settings of its own would be undone before theirs and leave them this cache.
    settings.REDIS_KEY_PREFIX = prefix
    settings.CACHES = cache_settings(url, prefix)
    try:
        assert known_keys.shared()
        yield
        clear_own_cache()
    finally:
        known_keys._entries.clear()
        if server is not None:
            server.stop()


@pytest.fixture
def key(shared_cache, organization):
    """A key of `organization` that this process has checked once (it has an entry)."""
    api_key, key = make_api_key(organization)
    assert get_with(key).status_code == 200
    assert known_keys.get(key) is not None
    return api_key, key


def get_with(key, **extra):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client.get(URL, **extra)


def queries_of(key):
    with CaptureQueriesContext(connection) as captured:
        assert get_with(key).status_code == 200
    return [query["sql"] for query in captured]


def test_a_key_checked_before_needs_no_query(key):
    _, key = key
    assert not [sql for sql in queries_of(key) if "tenants_" in sql]


def revoke(api_key):
    api_key.revoked = True
    api_key.save()


def deactivate_its_organization(api_key):
    api_key.organization.is_active = False
    api_key.organization.save()


@pytest.mark.parametrize(
    "change",
    [revoke, OrganizationAPIKey.delete, deactivate_its_organization],
    ids=lambda f: f.__name__,
)
def test_a_changed_key_stops_working_on_the_next_request(
    key, change, django_capture_on_commit_callbacks
):
    api_key, key = key
    # Committed, as outside a test: the new state token is written on commit.
    with django_capture_on_commit_callbacks(execute=True):
        change(OrganizationAPIKey.objects.select_related("organization").get(pk=api_key.pk))
    assert get_with(key).status_code == 401


def test_a_change_without_signals_is_seen_when_the_entry_is_read_again(key, monkeypatch):
    api_key, key = key
    OrganizationAPIKey.objects.filter(pk=api_key.pk).update(revoked=True)
    later = known_keys.time.monotonic() + known_keys.KNOWN_KEY_SECONDS + 1
    monkeypatch.setattr(known_keys.time, "monotonic", lambda: later)
    assert get_with(key).status_code == 401


def test_a_key_that_expired_since_it_was_checked_is_refused_and_counted(key, rf):
    api_key, key = key
    # Time passes: the expiry, in the future when the key was checked, is now past.
    expired = timezone.now() - dt.timedelta(seconds=1)
    OrganizationAPIKey.objects.filter(pk=api_key.pk).update(expiry_date=expired)
    known_keys.get(key).api_key.expiry_date = expired
    response = get_with(key)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "The API key has expired."
    assert APIKeyFailures(rf.get(URL)).window.count() == 1


def test_a_locked_out_address_gets_429_with_a_key_checked_before(key, settings):
    _, key = key
    settings.API_KEY_FAILURE_RATE = "2/minute"
    for _ in range(2):
        assert get_with("abcdefgh.wrong").status_code == 401
    response = get_with(key)
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1


def test_the_last_use_is_written_once_a_minute_with_a_key_checked_before(key):
    api_key, key = key
    OrganizationAPIKey.objects.filter(pk=api_key.pk).update(last_used_at=None)
    known_keys.cache.delete(api_key.last_use_guard)
    get_with(key)
    assert OrganizationAPIKey.objects.get(pk=api_key.pk).last_used_at is not None
    assert not [sql for sql in queries_of(key) if sql.startswith("UPDATE")]


def test_a_wrong_secret_finds_no_entry(key):
    api_key, _ = key
    assert get_with(f"{api_key.prefix}.wrong").status_code == 401


def test_without_redis_every_request_reads_its_key(organization, settings):
    settings.CACHES = cache_settings("")
    known_keys._entries.clear()
    _, key = make_api_key(organization)
    for _ in range(2):
        get_with(key)
    assert [sql for sql in queries_of(key) if "tenants_organizationapikey" in sql]
    assert not known_keys._entries


def counted_round_trips(monkeypatch):
    """Redis round trips sent from now on (a script, a command or a pipeline is one)."""
    sent = []
    send = redis.connection.AbstractConnection.send_packed_command

    def counted(connection, command, *args, **kwargs):
        sent.append(command)
        return send(connection, command, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    return sent


def test_a_key_checked_before_needs_one_redis_round_trip_with_its_throttle(key, monkeypatch):
    _, key = key
    # The server learns the script on its first use (NOSCRIPT, SCRIPT LOAD: two more trips).
    assert get_with(key).status_code == 200
    round_trips = counted_round_trips(monkeypatch)

    assert get_with(key).status_code == 200

    assert len(round_trips) == 1


def test_the_throttle_counted_with_the_key_check_refuses_over_the_rate(key, settings):
    _, key = key
    settings.API_THROTTLE_RATE = "3/minute"

    # The key's first request, in the fixture, opened the window.
    statuses = [get_with(key).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    assert 1 <= int(get_with(key)["Retry-After"]) <= 60


def throttle_window(api_key):
    return APIKeyRateThrottle().window_for(api_key)


def test_a_throttle_window_opened_with_the_key_check_says_when_it_ends(key, settings):
    api_key, key = key
    settings.API_THROTTLE_RATE = "1/hour"
    window = throttle_window(api_key)
    known_keys.cache.delete_many([window.count_key, window.ends_key])

    assert get_with(key).status_code == 200
    opened_at = time.time()
    response = get_with(key)

    assert response.status_code == 429
    assert 3590 <= int(response["Retry-After"]) <= 3600
    # Its end is kept (without it, Retry-After would be the whole period whenever it was asked).
    assert 3590 <= known_keys.cache.get(window.ends_key) - opened_at <= 3601


def test_a_refused_key_counts_no_throttle_hit(key, settings, django_capture_on_commit_callbacks):
    api_key, key = key
    settings.API_THROTTLE_RATE = "2/minute"
    count_key = throttle_window(api_key).count_key
    counted = known_keys.cache.get(count_key)
    with django_capture_on_commit_callbacks(execute=True):
        revoke(OrganizationAPIKey.objects.get(pk=api_key.pk))

    assert get_with(key).status_code == 401
    assert known_keys.cache.get(count_key) == counted
