"""Strict reading of environment variables for settings.py.

django-environ parses the values; this wrapper makes every bad value stop start-up with an
ImproperlyConfigured that names the variable (django-environ alone would raise a bare ValueError,
return {} for an unparsable DATABASE_URL, or read "maybe" as False).
"""

import math
import os
import warnings
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}
SUPPORTED_DATABASE_ENGINES = {
    "django.db.backends.sqlite3": "sqlite",
    "django.db.backends.postgresql": "postgres",
}
_MISSING = object()


class ConfigurationError(ImproperlyConfigured):
    """A variable is missing or has a value that cannot be used."""

    def __init__(self, name, problem):
        self.variable = name
        super().__init__(f"{name}: {problem}")


class Environment:
    def __init__(self, environ_mapping=None):
        self.values = os.environ if environ_mapping is None else environ_mapping
        self.parser = environ.Env()

    def is_set(self, name):
        return self.values.get(name, "") != ""

    def raw(self, name, default=_MISSING):
        value = self.values.get(name, "")
        if value == "":
            if default is _MISSING:
                raise ConfigurationError(name, "is required but not set")
            return default
        return value

    def str(self, name, default=_MISSING):
        return self.raw(name, default)

    def int(self, name, default=_MISSING, minimum=None, maximum=None):
        value = self.raw(name, default)
        if value is default:
            return value
        try:
            number = int(value)
        except ValueError:
            raise ConfigurationError(name, f"{value!r} is not a whole number") from None
        return self._within(name, number, minimum, maximum)

    def float(self, name, default=_MISSING, minimum=None, maximum=None):
        value = self.raw(name, default)
        if value is default:
            return value
        try:
            number = float(value)
        except ValueError:
            raise ConfigurationError(name, f"{value!r} is not a number") from None
        if not math.isfinite(number):
            # float() takes "nan" and "inf", which no bound check catches (nan compares false).
            raise ConfigurationError(name, f"{value!r} is not a finite number")
        return self._within(name, number, minimum, maximum)

    def bool(self, name, default=_MISSING):
        value = self.raw(name, default)
        if value is default:
            return value
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ConfigurationError(name, f"{value!r} is not a boolean (use true/false, 1/0, on/off)")

    def choice(self, name, choices, default=_MISSING):
        value = self.raw(name, default)
        if value not in choices:
            raise ConfigurationError(name, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def list(self, name, default=_MISSING):
        value = self.raw(name, default)
        if isinstance(value, list):
            return value
        return [item.strip() for item in value.split(",") if item.strip()]

    def throttle_rate(self, name, default=_MISSING):
        """A DRF rate such as "1200/minute"."""
        value = self.raw(name, default)
        count, _, period = value.partition("/")
        if not count.isdigit() or period[:1] not in {"s", "m", "h", "d"}:
            raise ConfigurationError(
                name,
                f"{value!r} is not a rate like 1200/minute (periods: second, minute, hour, day)",
            )
        return value

    def database_url(self, name, default=_MISSING):
        """A Django DATABASES entry from a sqlite:// or postgres:// URL."""
        url = self.raw(name, default)
        return parse_database_url(name, url, self.parser)

    def redis_url(self, name, default=_MISSING):
        url = self.raw(name, default)
        if url is default:
            return url
        parts = urlsplit(url)
        if parts.scheme not in {"redis", "rediss", "unix"} or not (parts.hostname or parts.path):
            raise ConfigurationError(name, f"{redact_url(url)!r} is not a redis://host:port/db URL")
        try:
            parts.port  # noqa: B018 - raises on a non-numeric port
        except ValueError:
            raise ConfigurationError(name, f"{redact_url(url)!r} has an invalid port") from None
        return url

    @staticmethod
    def _within(name, number, minimum, maximum):
        if minimum is not None and number < minimum:
            raise ConfigurationError(name, f"{number} is below the minimum of {minimum}")
        if maximum is not None and number > maximum:
            raise ConfigurationError(name, f"{number} is above the maximum of {maximum}")
        return number


def parse_database_url(name, url, parser=None):
    parser = parser or environ.Env()
    shown = redact_url(url)
    try:
        with warnings.catch_warnings():
            # An unknown scheme only warns in django-environ; it is rejected just below.
            warnings.simplefilter("ignore", UserWarning)
            config = parser.db_url_config(url)
    except ValueError as error:
        raise ConfigurationError(name, f"{shown!r} cannot be parsed: {error}") from None
    engine = config.get("ENGINE")
    if engine not in SUPPORTED_DATABASE_ENGINES:
        raise ConfigurationError(
            name, f"{shown!r} is not a sqlite:///path or postgres://user@host:port/name URL"
        )
    if not config.get("NAME"):
        raise ConfigurationError(name, f"{shown!r} names no database")
    return config


def redact_url(url):
    """The URL with its password replaced, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
