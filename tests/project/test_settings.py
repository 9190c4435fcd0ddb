"""Settings read from the environment, checked in a fresh process as at real start-up (each
forked from the warmed-up helper of tests/fresh_python.py, which has never loaded them)."""

import json
import uuid

import pytest

from tests.processes import (
    STRONG_SECRET_KEY,
    production_environment,
    project_environment,
    run_manage,
    run_python,
)

pytestmark = pytest.mark.system

PRINT_DEFAULT_CACHE = (
    "import json; from django.conf import settings; print(json.dumps(settings.CACHES['default']))"
)
PRINT_DEFAULT_DATABASE = (
    "import json; from django.conf import settings; "
    "print(json.dumps(settings.DATABASES['default'], default=str))"
)
SETTINGS_ENVIRONMENT = {"DJANGO_SETTINGS_MODULE": "project.settings"}


def settings_of(code, **variables):
    result = run_python(code, project_environment(**SETTINGS_ENVIRONMENT, **variables))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_bad_pool_size_stops_start_up_naming_the_variable():
    result = run_manage("check", environment=project_environment(DB_POOL_MAX_SIZE="ten"))
    assert result.returncode == 2
    assert "Configuration error: DB_POOL_MAX_SIZE: 'ten' is not a whole number" in result.stderr
    assert "Traceback" not in result.stderr


def test_unparsable_database_url_stops_start_up_naming_the_variable():
    result = run_manage("check", environment=project_environment(DATABASE_URL="notaurl"))
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr


def test_unknown_environment_name_stops_start_up():
    result = run_manage("check", environment=project_environment(DJANGO_ENV="staging"))
    assert result.returncode == 2
    assert "DJANGO_ENV: 'staging' is not one of development, test, production" in result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    environment = production_environment(DJANGO_SECRET_KEY=None)
    result = run_manage("check", environment=environment)
    assert result.returncode == 2
    assert "DJANGO_SECRET_KEY: is required but not set" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    environment = production_environment(DJANGO_ALLOWED_HOSTS=None)
    result = run_manage("check", environment=environment)
    assert result.returncode == 2
    assert "DJANGO_ALLOWED_HOSTS: is required but not set" in result.stderr


def test_production_refuses_debug():
    result = run_manage("check", environment=production_environment(DJANGO_DEBUG="true"))
    assert result.returncode == 2
    assert "DJANGO_DEBUG" in result.stderr


def test_deploy_check_is_clean_in_production():
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING", environment=production_environment()
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_sets_https_protections():
    code = (
        "import json; from django.conf import settings as s; print(json.dumps(["
        "s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE,"
        " s.CSRF_COOKIE_SECURE, s.SECURE_PROXY_SSL_HEADER, s.CSRF_TRUSTED_ORIGINS]))"
    )
    result = run_python(
        code,
        production_environment(
            **SETTINGS_ENVIRONMENT, DJANGO_CSRF_TRUSTED_ORIGINS="https://orders.example.com"
        ),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        True,
        31536000,
        True,
        True,
        ["HTTP_X_FORWARDED_PROTO", "https"],
        ["https://orders.example.com"],
    ]


def test_default_database_is_a_sqlite_file_in_the_project():
    database = settings_of(PRINT_DEFAULT_DATABASE)
    assert database["ENGINE"].endswith(".sqlite3")
    assert database["NAME"].endswith("/db.sqlite3")
    assert database["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_postgres_uses_the_native_pool_with_the_configured_bounds():
    database = settings_of(
        PRINT_DEFAULT_DATABASE,
        DATABASE_URL="postgres://app@db:5432/orders",
        DB_POOL_MIN_SIZE="2",
        DB_POOL_MAX_SIZE="7",
        GUNICORN_THREADS="4",
        DB_POOL_TIMEOUT="3",
    )
    pool = database["OPTIONS"]["pool"]
    assert (pool["min_size"], pool["max_size"], pool["timeout"]) == (2, 7, 3.0)
    assert "check" not in pool  # Django 5.2 raises TypeError on it
    assert database["CONN_MAX_AGE"] == 0
    assert database["CONN_HEALTH_CHECKS"] is True


def test_postgres_gets_statement_timeout_and_sslmode():
    database = settings_of(
        PRINT_DEFAULT_DATABASE,
        DATABASE_URL="postgres://app@db:5432/orders",
        DB_STATEMENT_TIMEOUT_MS="1500",
        DB_SSLMODE="verify-full",
    )
    assert database["OPTIONS"]["options"] == "-c statement_timeout=1500"
    assert database["OPTIONS"]["sslmode"] == "verify-full"


def test_pool_off_switches_to_persistent_connections():
    database = settings_of(
        PRINT_DEFAULT_DATABASE,
        DATABASE_URL="postgres://app@pgbouncer:6432/orders",
        DB_POOL="0",
        DB_CONN_MAX_AGE="60",
    )
    assert "pool" not in database["OPTIONS"]
    assert database["CONN_MAX_AGE"] == 60


def test_more_threads_than_pooled_connections_is_rejected():
    result = run_manage(
        "check",
        environment=project_environment(
            DATABASE_URL="postgres://app@db:5432/orders", DB_POOL_MAX_SIZE="4", GUNICORN_THREADS="8"
        ),
    )
    assert result.returncode == 2
    assert "Configuration error: GUNICORN_THREADS: 8 threads per process exceed" in result.stderr


def test_pool_floor_above_ceiling_is_rejected():
    result = run_manage(
        "check", environment=project_environment(DB_POOL_MIN_SIZE="5", DB_POOL_MAX_SIZE="2")
    )
    assert result.returncode == 2
    assert "DB_POOL_MIN_SIZE" in result.stderr


def test_replica_urls_become_read_only_aliases_mirroring_the_primary_in_tests():
    aliases = settings_of(
        "import json; from django.conf import settings; "
        "print(json.dumps({a: d.get('TEST', {}) for a, d in settings.DATABASES.items()}))",
        DATABASE_URL="postgres://app@primary:5432/orders",
        DATABASE_REPLICA_URLS="postgres://app@replica-a:5432/orders,postgres://app@replica-b:5432/orders",
    )
    assert aliases["replica_1"] == {"MIRROR": "default"}
    assert set(aliases) == {"default", "replica_1", "replica_2"}


def test_the_replica_lag_limit_keeps_reading_its_former_name():
    code = "from django.conf import settings; print(settings.DB_REPLICA_MAX_LAG_SECONDS)"

    assert settings_of(code, HEALTH_REPLICA_MAX_LAG_SECONDS="45") == 45.0
    assert (
        settings_of(code, HEALTH_REPLICA_MAX_LAG_SECONDS="45", DB_REPLICA_MAX_LAG_SECONDS="20")
        == 20.0
    )


def test_redis_url_selects_django_redis_failing_open_with_socket_timeouts():
    cache = settings_of(PRINT_DEFAULT_CACHE, REDIS_URL="redis://cache:6379/1")
    assert cache["BACKEND"].endswith(".RedisCache")
    assert cache["OPTIONS"]["IGNORE_EXCEPTIONS"] is True
    assert cache["OPTIONS"]["SOCKET_TIMEOUT"] == 0.5
    assert cache["OPTIONS"]["SOCKET_CONNECT_TIMEOUT"] == 0.5


def test_redis_key_prefix_starts_every_cache_key():
    cache = settings_of(
        PRINT_DEFAULT_CACHE, REDIS_URL="redis://cache:6379/1", REDIS_KEY_PREFIX="orders-eu"
    )
    assert cache["KEY_PREFIX"] == "orders-eu"


def test_without_redis_the_cache_is_local_memory():
    cache = settings_of(PRINT_DEFAULT_CACHE)
    assert cache["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LOG_LEVEL", "LOUD"),
        ("LOG_ACCESS_LEVEL", "DEBUG"),
        ("LOG_ACCESS_BUFFER_SECONDS", "-1"),
        ("LOG_ACCESS_BUFFER_SECONDS", "nan"),
        ("TELEMETRY_FLUSH_SECONDS", "nan"),
        ("WEB_CONCURRENCY", "many"),
        ("PORT", "70000"),
        ("REDIS_URL", "memcached://cache"),
        ("DB_SSLMODE", "sometimes"),
    ],
)
def test_each_bad_value_is_reported_by_name(variable, value):
    result = run_manage("check", environment=project_environment(**{variable: value}))
    assert result.returncode == 2
    assert f"Configuration error: {variable}:" in result.stderr


PRINT_RENDERERS = (
    "import json; from django.conf import settings; "
    "print(json.dumps(settings.REST_FRAMEWORK['DEFAULT_RENDERER_CLASSES']))"
)


def test_the_browsable_api_is_rendered_in_development():
    renderers = settings_of(PRINT_RENDERERS, DJANGO_ENV="development")
    assert "rest_framework.renderers.BrowsableAPIRenderer" in renderers


def test_production_renders_json_only():
    renderers = settings_of(
        PRINT_RENDERERS,
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY=STRONG_SECRET_KEY,
        DJANGO_ALLOWED_HOSTS="orders.example.com",
    )
    assert renderers == ["apps.api.renderers.JSONRenderer"]


@pytest.mark.django_db
def test_a_database_that_does_not_exist_stops_manage_py_with_one_line_naming_it():
    from django.db import connection

    from tests.processes import postgres_url

    if connection.vendor != "postgresql":
        pytest.skip("runs in the PostgreSQL pass")
    missing = f"orders_missing_{uuid.uuid4().hex[:8]}"
    environment = project_environment(
        DJANGO_ENV="test", DATABASE_URL=postgres_url(connection.settings_dict, missing)
    )

    result = run_manage("migrate", "--noinput", environment=environment)

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"Configuration error: DATABASE_URL: database {missing!r} does not exist on "
        f"{connection.settings_dict['HOST']}:{connection.settings_dict['PORT']}; create it "
        f"(createdb -h {connection.settings_dict['HOST']} -p {connection.settings_dict['PORT']} "
        f"-U {connection.settings_dict['USER']} {missing}) or correct the URL"
    ]
