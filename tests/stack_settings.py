"""The settings of the local stack's instances (tests/stack.py): the service's own, production
included, plus two things a release build does not have:

- static files served from the apps, as in development: collecting and compressing them (the
  image does it once, at build time) takes longer than starting the whole stack;
- the fault-injection URLconf (tests/stack_urls.py), whose /drill/error/ fails on purpose.
"""

from project.settings import *  # noqa: F403
from project.settings import STORAGES

STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
ROOT_URLCONF = "tests.stack_urls"
