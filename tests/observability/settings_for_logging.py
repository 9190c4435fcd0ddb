"""The project's settings plus the test-only URLs, for gunicorn in the end-to-end logging test."""

from project.settings import *  # noqa: F403

ROOT_URLCONF = "tests.observability.urls_for_logging"
