"""NPLUSONE_SAMPLE_RATE per environment, read in a fresh process as at start-up."""

import pytest

from tests.processes import production_environment, project_environment, run_manage, run_python

pytestmark = pytest.mark.system

PRINT_RATE = """
import django
django.setup()
from django.conf import settings
print(settings.NPLUSONE_SAMPLE_RATE)
"""


def sample_rate(environment, tmp_path):
    environment = {
        **environment,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    completed = run_python(PRINT_RATE, environment)
    assert completed.returncode == 0, completed.stderr
    return float(completed.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("environment", "rate"),
    [
        (production_environment(NPLUSONE_SAMPLE_RATE=None), 0.05),
        (project_environment(DJANGO_ENV="development", NPLUSONE_SAMPLE_RATE=None), 1.0),
        (project_environment(DJANGO_ENV="test", NPLUSONE_SAMPLE_RATE=None), 0.0),
        (production_environment(NPLUSONE_SAMPLE_RATE="0.5"), 0.5),
    ],
    ids=["production", "development", "test", "set"],
)
def test_the_sample_rate_defaults_per_environment(environment, rate, tmp_path):
    assert sample_rate(environment, tmp_path) == rate


@pytest.mark.parametrize("value", ["1.5", "-0.1", "often"])
def test_a_sample_rate_outside_0_to_1_stops_start_up_naming_the_variable(value):
    result = run_manage("check", environment=project_environment(NPLUSONE_SAMPLE_RATE=value))

    assert result.returncode == 2
    assert "Configuration error: NPLUSONE_SAMPLE_RATE:" in result.stderr
