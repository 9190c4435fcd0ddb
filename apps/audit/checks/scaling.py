"""Whether more processes and hosts can serve: workers, shared state, replicas, static files."""

import os
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.files.storage import storages

from apps.audit import database
from apps.audit.checks.replicas import replica_states
from apps.audit.report import CRITICAL, INFO, WARNING, Finding

PROCESS_LOCAL_SESSIONS = {
    "django.contrib.sessions.backends.file": "files on this host",
}


def available_cores():
    """CPUs this process may use: the cgroup quota (containers), else the affinity mask."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except (OSError, ValueError):
        return cores
    if quota == "max":
        return cores
    return max(1, min(cores, round(int(quota) / int(period))))


def _workers():
    cores = available_cores()
    workers = settings.WEB_CONCURRENCY
    ceiling = 2 * cores + 1
    data = {"workers": workers, "threads": settings.GUNICORN_THREADS, "cores": cores}
    evidence = (
        f"WEB_CONCURRENCY {workers} gunicorn processes x GUNICORN_THREADS "
        f"{settings.GUNICORN_THREADS} threads on {cores} core(s) available to this process "
        "(the audit runs with the web pods' configuration; its own cores stand for theirs)."
    )
    if workers > ceiling:
        return Finding(
            "workers",
            WARNING,
            "More workers than the cores can run",
            f"{evidence} More than 2 x cores + 1 = {ceiling}.",
            f"Lower WEB_CONCURRENCY to {cores}-{ceiling} and scale with instances instead: each "
            "process costs memory and database connections.",
            data,
        )
    return Finding("workers", INFO, "Workers fit the cores", evidence, "", data)


def _shared_cache(scope):
    processes = scope.instances * settings.WEB_CONCURRENCY
    cache = caches["default"]
    backend = type(cache).__name__
    data = {"processes": processes, "backend": backend}
    if isinstance(cache, LocMemCache):
        # Several workers of one instance loosen the limits by their number; across instances
        # nothing is shared at all.
        severity = CRITICAL if scope.instances > 1 else WARNING if processes > 1 else INFO
        return Finding(
            "cache:shared",
            severity,
            "The cache is each process's own memory",
            f"{backend} with {scope.instances} instance(s) x {settings.WEB_CONCURRENCY} workers "
            f"= {processes} process(es): API throttling, login limits and cached sessions are "
            "counted per process.",
            "Set REDIS_URL: one cache shared by every process." if processes > 1 else "",
            data,
        )
    host = urlsplit(settings.REDIS_URL).hostname or settings.REDIS_URL
    return Finding(
        "cache:shared",
        INFO,
        "One cache shared by every process",
        f"{backend} on Redis at {host}, shared by {processes} process(es); whether it answers "
        "is the /ready cache check.",
        "",
        data,
    )


def _sessions(scope):
    engine = settings.SESSION_ENGINE
    cache_is_local = isinstance(caches[settings.SESSION_CACHE_ALIAS], LocMemCache)
    processes = scope.instances * settings.WEB_CONCURRENCY
    local = PROCESS_LOCAL_SESSIONS.get(engine)
    if engine == "django.contrib.sessions.backends.cache" and cache_is_local:
        local = "this process's memory"
    if local and processes > 1:
        return Finding(
            "sessions",
            CRITICAL,
            "Sessions are tied to one process",
            f"SESSION_ENGINE {engine} keeps sessions in {local}; {processes} processes serve, so "
            "a signed-in user is signed out whenever another one answers.",
            "Use django.contrib.sessions.backends.cached_db (the default here) or db.",
            {"engine": engine},
        )
    return Finding(
        "sessions",
        INFO,
        "Sessions are shared by every process",
        f"SESSION_ENGINE {engine}: sessions live in the database"
        + (", cached in the shared cache." if "cache" in engine else "."),
        "",
        {"engine": engine},
    )


def _sqlite(scope):
    if database.is_postgres():
        return []
    severity = CRITICAL if scope.instances > 1 else WARNING
    return [
        Finding(
            "database:sqlite",
            severity,
            "SQLite cannot be shared by several hosts",
            f"{database.describe()} with {scope.instances} instance(s): one file, one writer at "
            "a time, on one host.",
            "Run on PostgreSQL (DATABASE_URL=postgres://…) before scaling out.",
            {"instances": scope.instances},
        )
    ]


def _replicas():
    states = replica_states()
    if not states:
        return [
            Finding(
                "replicas",
                INFO,
                "No read replica is configured",
                "DATABASE_REPLICA_URLS is empty: every read goes to the primary.",
                "Add replicas (DATABASE_REPLICA_URLS) when the primary's CPU is taken by reads.",
            )
        ]
    limit = settings.DB_REPLICA_MAX_LAG_SECONDS
    return [
        Finding(
            f"replica:{state['alias']}",
            INFO if state["status"] == "ok" else WARNING,
            f"Replica {state['alias']}: {state['status']}",
            f"{state['message']}; lag {state['lag_seconds']} s against "
            f"DB_REPLICA_MAX_LAG_SECONDS {limit:g} s.",
            ""
            if state["status"] == "ok"
            else "Out of rotation, its reads go to the primary, which carries them all: repair "
            "replication or remove it from DATABASE_REPLICA_URLS.",
            state,
        )
        for state in states
    ]


def _static_files():
    storage = storages["staticfiles"]
    storage_class = type(storage)
    hashed = isinstance(storage, ManifestFilesMixin)
    compressed = "Compressed" in storage_class.__name__
    name = f"{storage_class.__module__}.{storage_class.__name__}"
    data = {"storage": name, "hashed": hashed, "compressed": compressed}
    if not (hashed and compressed):
        return Finding(
            "static:hashed",
            WARNING,
            "Static files are not hashed and compressed",
            f"STORAGES['staticfiles'] is {name}: "
            f"{'hashed' if hashed else 'no content hash in the names'}, "
            f"{'compressed' if compressed else 'no gzip or brotli copies'}.",
            "Use whitenoise.storage.CompressedManifestStaticFilesStorage (outside tests).",
            data,
        )
    manifest = Path(settings.STATIC_ROOT) / storage.manifest_name
    data["manifest"] = str(manifest)
    if not manifest.is_file():
        return Finding(
            "static:hashed",
            INFO if settings.DEBUG else CRITICAL,
            "Static files are not collected",
            f"{name}, but {manifest} does not exist: collectstatic has not run"
            + (
                " (DEBUG serves them unhashed from the apps)."
                if settings.DEBUG
                else "; every page that links a static file fails."
            ),
            "Run manage.py collectstatic at build time (the Dockerfile does).",
            data,
        )
    return Finding(
        "static:hashed",
        INFO,
        "Static files are hashed and compressed",
        f"{name}; manifest {manifest}: cached for a year under their hashed names, with gzip "
        "and brotli copies.",
        "",
        data,
    )


def _origin(url):
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _cdn():
    origin = _origin(settings.STATIC_URL)
    if not origin:
        return Finding(
            "static:cdn",
            INFO,
            "Static files are served by the service itself",
            f"DJANGO_STATIC_URL {settings.STATIC_URL}: WhiteNoise serves them from every "
            "instance, with far-future caching for hashed names.",
            "",
            {"static_url": settings.STATIC_URL},
        )
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    refused = [
        directive
        for directive in ("script-src", "style-src")
        if origin not in directives.get(directive, [])
    ]
    serves_origin = "whitenoise.middleware.WhiteNoiseMiddleware" in settings.MIDDLEWARE
    data = {"static_url": settings.STATIC_URL, "origin": origin, "refused_by": refused}
    if refused or not serves_origin:
        problems = []
        if refused:
            problems.append(f"the Content-Security-Policy's {', '.join(refused)} refuse {origin}")
        if not serves_origin:
            problems.append("WhiteNoise is not installed, so the CDN has no origin to pull from")
        return Finding(
            "static:cdn",
            CRITICAL,
            "Static files from a CDN would not load",
            f"DJANGO_STATIC_URL {settings.STATIC_URL}: {'; '.join(problems)}.",
            "Let settings add the CDN's origin to the policy (it does for DJANGO_STATIC_URL) "
            "and keep WhiteNoise serving /static/ as the CDN's origin.",
            data,
        )
    return Finding(
        "static:cdn",
        INFO,
        "Static files come from a CDN",
        f"DJANGO_STATIC_URL {settings.STATIC_URL}: pages link {origin}, which the "
        "Content-Security-Policy allows; WhiteNoise serves /static/ as its origin.",
        "",
        data,
    )


def scaling(scope):
    return [
        _workers(),
        *_sqlite(scope),
        _shared_cache(scope),
        _sessions(scope),
        *_replicas(),
        _static_files(),
        _cdn(),
    ]
