"""The checks that read the deployment's configuration and dependencies: readiness, logging and
monitoring, scaling, sharding readiness, settings."""

import json

import pytest

from apps.audit.checks import configuration, monitoring, readiness, scaling, sharding
from apps.audit.report import CRITICAL, INFO, WARNING
from tests.audit.conftest import finding, scope
from tests.orders.factories import make_customer, make_organization
from tests.processes import free_port

pytestmark = [pytest.mark.django_db]

VALID_RULES = """
groups:
  - name: audit-test
    rules:
      - alert: Down
        expr: up == 0
"""
INVALID_RULES = """
groups:
  - name: audit-test
    rules:
      - alert: Broken
        expr: rate(http_requests_total[5m]
"""


def unreachable_redis_cache():
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {
                "IGNORE_EXCEPTIONS": True,
                "SOCKET_CONNECT_TIMEOUT": 0.2,
                "SOCKET_TIMEOUT": 0.2,
            },
        }
    }


# --- Readiness ------------------------------------------------------------------------------------


def test_each_ready_check_passes_on_a_working_deployment():
    findings = readiness.readiness(scope())

    assert finding(findings, "ready:database").severity == INFO
    assert finding(findings, "ready:migrations").severity == INFO


def test_an_unreachable_cache_degrades_readiness(settings):
    settings.CACHES = unreachable_redis_cache()

    assert finding(readiness.readiness(scope()), "ready:cache").severity == WARNING


# --- Logging and monitoring -----------------------------------------------------------------------


def test_no_metrics_token_warns(settings):
    settings.METRICS_TOKEN = ""

    found = finding(monitoring.logging_and_monitoring(scope()), "metrics:token")

    assert found.severity == WARNING


def test_a_metrics_token_passes(settings):
    settings.METRICS_TOKEN = "t" * 32

    assert finding(monitoring.logging_and_monitoring(scope()), "metrics:token").severity == INFO


def test_no_sentry_dsn_warns(settings):
    settings.SENTRY_DSN = ""

    assert finding(monitoring.logging_and_monitoring(scope()), "errors:sentry").severity == WARNING


def test_a_sentry_dsn_passes(settings):
    settings.SENTRY_DSN = "https://key@sentry.example.com/1"

    assert finding(monitoring.logging_and_monitoring(scope()), "errors:sentry").severity == INFO


def test_console_logs_in_production_warn(settings):
    settings.LOG_FORMAT, settings.IS_PRODUCTION = "console", True

    assert finding(monitoring.logging_and_monitoring(scope()), "logs:json").severity == WARNING


def test_json_logs_pass(settings):
    settings.LOG_FORMAT = "json"

    assert finding(monitoring.logging_and_monitoring(scope()), "logs:json").severity == INFO


def test_invalid_alert_rules_fail(settings, tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text(INVALID_RULES)
    settings.SCALING_AUDIT_ALERT_RULES = str(rules)

    found = finding(monitoring.logging_and_monitoring(scope()), "alerts:rules")

    assert found.severity == CRITICAL


def test_valid_alert_rules_pass(settings, tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text(VALID_RULES)
    settings.SCALING_AUDIT_ALERT_RULES = str(rules)

    found = finding(monitoring.logging_and_monitoring(scope()), "alerts:rules")

    assert found.severity == INFO
    assert found.data["rules"] == 1


def test_missing_alert_rules_warn(settings, tmp_path):
    settings.SCALING_AUDIT_ALERT_RULES = str(tmp_path / "absent.yml")

    assert finding(monitoring.logging_and_monitoring(scope()), "alerts:rules").severity == WARNING


# --- Scaling --------------------------------------------------------------------------------------


def test_more_workers_than_the_cores_can_run_warns(settings):
    settings.WEB_CONCURRENCY = 4 * scaling.available_cores() + 2

    assert finding(scaling.scaling(scope()), "workers").severity == WARNING


def test_workers_matching_the_cores_pass(settings):
    settings.WEB_CONCURRENCY = scaling.available_cores()

    assert finding(scaling.scaling(scope()), "workers").severity == INFO


def test_a_process_local_cache_fails_with_several_instances(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

    found = finding(scaling.scaling(scope(instances=2)), "cache:shared")

    assert found.severity == CRITICAL
    assert "REDIS_URL" in found.recommendation


def test_a_redis_cache_is_shared(settings):
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    settings.CACHES = {
        "default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": settings.REDIS_URL}
    }

    assert finding(scaling.scaling(scope(instances=2)), "cache:shared").severity == INFO


def test_file_sessions_fail_with_several_processes(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.file"

    assert finding(scaling.scaling(scope(instances=2)), "sessions").severity == CRITICAL


def test_database_sessions_are_shared(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

    assert finding(scaling.scaling(scope(instances=2)), "sessions").severity == INFO


def test_no_replica_is_stated():
    assert finding(scaling.scaling(scope()), "replicas").severity == INFO


def test_a_lagging_replica_warns_with_its_lag_against_the_limit(monkeypatch, settings):
    settings.DB_REPLICA_MAX_LAG_SECONDS = 30
    # The replica's state as the readiness check measures it (tests/observability covers that).
    lagging = {
        "alias": "replica_1",
        "status": "degraded",
        "message": "lagging, out of rotation: 41 s behind",
        "lag_seconds": 41.0,
    }
    monkeypatch.setattr(scaling, "replica_states", lambda: [lagging])

    replica = finding(scaling.scaling(scope()), "replica:replica_1")

    assert replica.severity == WARNING
    assert "lag 41.0 s against DB_REPLICA_MAX_LAG_SECONDS 30 s" in replica.evidence


def test_unhashed_static_files_warn():
    # Tests run with plain StaticFilesStorage (project/settings.py).
    assert finding(scaling.scaling(scope()), "static:hashed").severity == WARNING


def test_collected_hashed_compressed_static_files_pass(settings, tmp_path):
    settings.DEBUG = False
    settings.STATIC_ROOT = str(tmp_path)
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    (tmp_path / "staticfiles.json").write_text(json.dumps({"paths": {}, "version": "1.1"}))

    assert finding(scaling.scaling(scope()), "static:hashed").severity == INFO


def test_a_cdn_the_content_security_policy_refuses_fails(settings):
    settings.STATIC_URL = "https://cdn.example.com/static/"

    found = finding(scaling.scaling(scope()), "static:cdn")

    assert found.severity == CRITICAL
    assert "https://cdn.example.com" in found.evidence


def test_a_cdn_the_content_security_policy_allows_passes(settings):
    origin = "https://cdn.example.com"
    settings.STATIC_URL = f"{origin}/static/"
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    settings.CONTENT_SECURITY_POLICY = {
        "DIRECTIVES": {
            **directives,
            "script-src": [*directives["script-src"], origin],
            "style-src": [*directives["style-src"], origin],
        }
    }

    assert finding(scaling.scaling(scope()), "static:cdn").severity == INFO


# --- Sharding readiness ---------------------------------------------------------------------------


def test_every_tenant_table_carries_organization_id():
    assert finding(sharding.sharding_readiness(scope()), "sharding:tenant-column").severity == INFO


def test_one_organization_holding_most_rows_warns(settings):
    settings.SCALING_AUDIT_LARGE_TABLE_ROWS = 1
    big, small = make_organization(), make_organization()
    for number in range(9):
        make_customer(big, email=f"big{number}@example.com")
    make_customer(small, email="small@example.com")

    found = finding(sharding.sharding_readiness(scope()), "sharding:tenant-share")

    assert found.severity == WARNING
    assert f"organization {big.pk} 90 %" in found.evidence


def test_organizations_of_similar_size_pass(settings):
    settings.SCALING_AUDIT_LARGE_TABLE_ROWS = 1
    for organization in (make_organization(), make_organization()):
        make_customer(organization)

    assert finding(sharding.sharding_readiness(scope()), "sharding:tenant-share").severity == INFO


def test_citus_blockers_name_the_constraints_lacking_organization_id():
    found = finding(sharding.sharding_readiness(scope()), "sharding:citus")

    blockers = found.data["blockers"]
    assert "orders_ordernumbersequence" not in blockers
    assert any(
        "orders_line_product_once_per_order" in reason for reason in blockers["orders_orderline"]
    )


# --- Settings -------------------------------------------------------------------------------------


def test_debug_in_production_fails(settings):
    settings.DEBUG, settings.IS_PRODUCTION = True, True

    assert finding(configuration.settings_checks(scope()), "settings:debug").severity == CRITICAL


def test_debug_off_passes(settings):
    settings.DEBUG = False

    assert finding(configuration.settings_checks(scope()), "settings:debug").severity == INFO


def test_a_check_deploy_warning_is_a_finding(settings):
    settings.SECURE_HSTS_SECONDS = 0

    found = finding(configuration.settings_checks(scope()), "check:security.W004")

    assert found.severity == WARNING


def test_a_satisfied_deploy_check_is_not_reported(settings):
    settings.SECURE_HSTS_SECONDS = 31536000

    ids = [item.id for item in configuration.settings_checks(scope())]

    assert "check:security.W004" not in ids
