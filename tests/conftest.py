from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

# The `no_nplusone` marker: the test fails when its body runs an N+1 query pattern.
pytest_plugins = ["apps.profiling.pytest_plugin"]


def pytest_configure(config):
    # WhiteNoise scans STATIC_ROOT when the first request loads the middleware; tests run without
    # collectstatic, so give it an existing (empty) directory rather than a warning per test.
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)


@pytest.fixture
def superuser_client(client):
    """The test client signed in as a superuser, who may do anything in the admin."""
    superuser = get_user_model().objects.create_superuser("root", "root@example.com", "x")
    client.force_login(superuser)
    return client
