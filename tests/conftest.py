from pathlib import Path

from django.conf import settings


def pytest_configure(config):
    # WhiteNoise scans STATIC_ROOT when the first request loads the middleware; tests run without
    # collectstatic, so give it an existing (empty) directory rather than a warning per test.
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
