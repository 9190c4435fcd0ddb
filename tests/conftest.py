from pathlib import Path

from django.conf import settings

# The `no_nplusone` marker: the test fails when its body runs an N+1 query pattern.
pytest_plugins = ["apps.profiling.pytest_plugin"]


def pytest_configure(config):
    # WhiteNoise scans STATIC_ROOT when the first request loads the middleware; tests run without
    # collectstatic, so give it an existing (empty) directory rather than a warning per test.
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
