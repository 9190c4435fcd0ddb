"""Whether silk is installed is decided when settings are imported: checked in a fresh process
(forked from the warmed-up helper of tests/fresh_python.py, which never imports silk)."""

import json

import pytest

from tests.processes import production_environment, run_python

pytestmark = pytest.mark.system

# Prints what the settings installed and how /silk/ answers an anonymous visitor.
PROBE_SILK = """
import json, sys
import django
django.setup()
from django.conf import settings
from django.db.models.sql.compiler import SQLCompiler
from django.test import Client
response = Client().get("/silk/", HTTP_HOST="orders.example.com", secure=True)
print(json.dumps({
    "installed_apps": settings.INSTALLED_APPS,
    "middleware": settings.MIDDLEWARE,
    "status": response.status_code,
    "location": response.get("Location", ""),
    "silk_imported": any(name == "silk" or name.startswith("silk.") for name in sys.modules),
    "queries_patched": hasattr(SQLCompiler, "_execute_sql"),
    "sample_percent": settings.SILK_SAMPLE_PERCENT,
}))
"""


def probe(environment, tmp_path):
    environment = {
        **environment,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    completed = run_python(PROBE_SILK, environment)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    return probe(
        production_environment(SILK_ENABLED=None, SILK_SAMPLE_PERCENT=None),
        tmp_path_factory.mktemp("production"),
    )


@pytest.fixture(scope="module")
def disabled(tmp_path_factory):
    return probe(
        production_environment(SILK_ENABLED="false", SILK_SAMPLE_PERCENT=None),
        tmp_path_factory.mktemp("disabled"),
    )


def test_production_refuses_silk_to_anonymous_users(production):
    assert production["status"] == 302
    assert production["location"].startswith("/admin/login/")


def test_production_installs_silk_sampling_1_percent(production):
    assert "silk" in production["installed_apps"]
    assert production["sample_percent"] == 1.0


def test_silk_middleware_sits_between_prometheus_and_telemetry(production):
    middleware = production["middleware"]
    silk = middleware.index("apps.profiling.silk_middleware.SilkyMiddleware")
    assert middleware[silk - 1].endswith(".PrometheusBeforeMiddleware")
    assert silk < middleware.index("apps.observability.telemetry.middleware.TelemetryMiddleware")


def test_disabled_silk_is_not_an_installed_app(disabled):
    assert "silk" not in disabled["installed_apps"]


def test_disabled_silk_has_no_middleware(disabled):
    assert not any("silk" in entry for entry in disabled["middleware"])


def test_disabled_silk_has_no_url(disabled):
    assert disabled["status"] == 404


def test_disabled_silk_is_never_imported_nor_patches_queries(disabled):
    assert disabled["silk_imported"] is False
    assert disabled["queries_patched"] is False
