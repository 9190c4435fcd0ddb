"""Secrets never leave the process: the one redaction used by logging and by Sentry.

Two rules, applied to anything about to be written or sent:

- a value under a sensitive key (password, secret, token, API key, authorization, cookie,
  session, CSRF, DSN, credentials, private key; any case, also inside longer names such as
  `x_api_key` or `db_password`) is replaced whole, at any depth of dicts and lists;
- inside any string, the recognisable shapes of secrets are replaced: `Bearer <token>`, this
  project's API keys (djangorestframework-api-key: `<8-character prefix>.<32-character secret>`;
  the prefix is shown in clear in the admin, so it is kept to tell keys apart), the password of a
  URL (`scheme://user:password@host`), and `key=value` / `key: value` / `"key": "value"` pairs
  whose key is sensitive (query strings, headers, reprs of dicts, exception messages).

A secret with no recognisable shape in free text (say, a bare password in an exception message)
cannot be told from other words: code must not put one there.
"""

import functools
import re

REDACTED = "[REDACTED]"

# One alternation, matched anywhere in a key name (case-insensitive): "HTTP_AUTHORIZATION",
# "x-api-key", "db_password", "csrftoken", "sessionid", "SENTRY_DSN" all match.
_SENSITIVE_WORDS = (
    r"passw(?:or)?d|secret|token|api[-_ ]?key|authorization|cookie|session|csrf|xsrf|dsn"
    r"|credential|private[-_ ]?key"
)
_SENSITIVE_KEY = re.compile(_SENSITIVE_WORDS, re.IGNORECASE)

# `token=abc`, `api_key: abc`, `'password': 'abc'`, `"Authorization": "Bearer abc"`,
# `Cookie: sessionid=abc; csrftoken=def` (the pair after the `;` matches on its own).
_SENSITIVE_PAIR = re.compile(
    rf"(?P<head>(?:{_SENSITIVE_WORDS})[\w.-]*[\"']?\s*[:=]\s*(?>(?:(?:bearer|basic)\s+)?))"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s&,;'\"<>(){}\[\]]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(?P<scheme>bearer)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
# djangorestframework-api-key's KeyGenerator: get_random_string(8) + "." + get_random_string(32).
_API_KEY = re.compile(r"\b(?P<prefix>[A-Za-z0-9]{8})\.[A-Za-z0-9]{32}\b")
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/?#@:]*:)[^\s/?#@]+(?=@)")
# Cheap pre-check: most strings hold none of these and skip the substitutions.
_MAYBE_SECRET = re.compile(rf"{_SENSITIVE_WORDS}|bearer|://|\.[A-Za-z0-9]{{32}}", re.IGNORECASE)
# The same pre-check for ASCII text, matched against its lower-case form without IGNORECASE:
# 3 to 10 times faster (an IGNORECASE alternation is tried character by character). For ASCII
# text both match exactly the same strings; other text takes _MAYBE_SECRET (Unicode case folding
# matches, say, the long s U+017F for "s", which lower() does not produce).
_MAYBE_SECRET_LOWER_ASCII = re.compile(rf"{_SENSITIVE_WORDS}|bearer|://|\.[a-z0-9]{{32}}")
# What each substitution needs, looked for in ASCII text (the last one lower-cased) before it runs;
# the replacements ([REDACTED]) hold none of it, so a skipped substitution could not have matched.
_URL_PASSWORD_HINT = re.compile(r"://[^\s/?#@:]*:[^\s/?#@]+@")
_API_KEY_HINT = re.compile(r"\.[A-Za-z0-9]{32}")
_SENSITIVE_WORD_LOWER_ASCII = re.compile(_SENSITIVE_WORDS)
# Key names repeat (the same dozen fields on every line): remember which are sensitive, for at
# most this many names of at most this length.
_SENSITIVE_KEY_CACHE_SIZE = 4096
_SENSITIVE_KEY_CACHE_MAX_LENGTH = 100
_sensitive_keys = {}
# Short strings repeat from line to line (route, method, level, logger name, event): their
# redacted form is remembered, least recently used first out. Unique ones (timestamps, request
# ids) pass through the cache and out again without displacing the repeated ones for long. The
# cache keeps the recent texts as they came, secrets included, in this process's memory only.
_REDACTED_TEXT_CACHE_SIZE = 4096
_REDACTED_TEXT_CACHE_MAX_LENGTH = 200

# djangorestframework-api-key's keys: 8 + 1 + 32 characters.
_API_KEY_LENGTH = 41
# The characters of numbers, dates and times (an ISO 8601 timestamp, a duration, an amount).
_NUMERIC_TEXT_CHARACTERS = "0123456789+-.:TZ "

_MAX_DEPTH = 20
_PRIMITIVES = (int, float, bool, type(None))
_PRIMITIVE_TYPES = frozenset(_PRIMITIVES)


def is_sensitive_key(key):
    if not isinstance(key, str):
        return False
    sensitive = _sensitive_keys.get(key)
    if sensitive is None:
        sensitive = _SENSITIVE_KEY.search(key) is not None
        if (
            len(key) <= _SENSITIVE_KEY_CACHE_MAX_LENGTH
            and len(_sensitive_keys) < _SENSITIVE_KEY_CACHE_SIZE
        ):
            _sensitive_keys[key] = sensitive
    return sensitive


def _is_empty(value):
    # An absent secret is shown as absent: "no token was sent" is worth knowing.
    return value is None or (isinstance(value, str) and value == "")


def _replace_pair_value(match):
    value = match.group("value")
    if value[:1] in {'"', "'"}:
        return f"{match.group('head')}{value[0]}{REDACTED}{value[0]}"
    return f"{match.group('head')}{REDACTED}"


def cannot_hold_secret(text):
    """Whether no substitution of redact_text can change `text`, told without searching it.

    Every pattern needs a separator (the ':' or '=' of a pair, the '.' of an API key, the '/' of
    a URL, the space after "bearer"), so alphanumeric text holds none; and each needs a letter
    other than T and Z, except an API key, which needs 41 characters: a number, date or time
    shorter than that holds none either. Log lines carry such text on every line (request ids,
    timestamps), each seen once, which the cache of redacted texts cannot help.
    """
    return text.isalnum() or (
        len(text) < _API_KEY_LENGTH and not text.strip(_NUMERIC_TEXT_CHARACTERS)
    )


def redact_text(text):
    """`text` with every recognisable secret replaced by [REDACTED]."""
    if not text or cannot_hold_secret(text):
        return text
    if len(text) <= _REDACTED_TEXT_CACHE_MAX_LENGTH:
        return _redact_short_text(text)
    return _redact_text(text)


def _redact_text(text):
    if text.isascii():
        lowered = text.lower()
        if _MAYBE_SECRET_LOWER_ASCII.search(lowered) is None:
            return text
        # Each substitution only where its pattern can match: over a long text (a response body
        # silk records) an IGNORECASE pattern scans every position, and a URL is no sensitive pair.
        url_password = _URL_PASSWORD_HINT.search(text) is not None
        bearer = "bearer" in lowered
        api_key = _API_KEY_HINT.search(text) is not None
        pairs = _SENSITIVE_WORD_LOWER_ASCII.search(lowered) is not None
    elif _MAYBE_SECRET.search(text) is None:
        return text
    else:
        url_password = bearer = api_key = pairs = True
    if url_password:
        text = _URL_PASSWORD.sub(rf"\g<head>{REDACTED}", text)
    if bearer:
        text = _BEARER.sub(rf"\g<scheme> {REDACTED}", text)
    if api_key:
        text = _API_KEY.sub(rf"\g<prefix>.{REDACTED}", text)
    if pairs:
        text = _SENSITIVE_PAIR.sub(_replace_pair_value, text)
    return text


_redact_short_text = functools.lru_cache(maxsize=_REDACTED_TEXT_CACHE_SIZE)(_redact_text)


def _redact_value(value, depth, stringify):
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, _PRIMITIVES):
        return value
    if depth >= _MAX_DEPTH:
        return REDACTED
    if isinstance(value, dict):
        redacted = {}
        for key, item in value.items():
            # The common cases inline (a log line is mostly these): the same results as
            # is_sensitive_key and redact_text, without a call per field.
            sensitive = _sensitive_keys.get(key)
            if sensitive is None:
                sensitive = is_sensitive_key(key)
            if sensitive and not _is_empty(item):
                redacted[key] = REDACTED
            elif type(item) is str:
                if cannot_hold_secret(item):
                    redacted[key] = item
                elif len(item) <= _REDACTED_TEXT_CACHE_MAX_LENGTH:
                    redacted[key] = _redact_short_text(item)
                else:
                    redacted[key] = _redact_text(item)
            elif type(item) in _PRIMITIVE_TYPES:
                redacted[key] = item
            else:
                redacted[key] = _redact_value(item, depth + 1, stringify)
        return redacted
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_redact_value(item, depth + 1, stringify) for item in value]
    if isinstance(value, bytes):
        return redact_text(value.decode("utf-8", "backslashreplace"))
    if stringify is not None:
        # Anything else is rendered as text anyway (JSON fallback, console): redact that text.
        return redact_text(stringify(value))
    return value


def redact(value, stringify=repr):
    """A copy of `value` (dicts, lists, strings, at any depth) with secrets replaced.

    Objects of other types are replaced by their redacted `stringify(object)`; with
    stringify=None they are returned as they are.
    """
    return _redact_value(value, 0, stringify)


def _structlog_text(value):
    # The same text structlog's renderers would produce for the object.
    render = getattr(value, "__structlog__", None)
    return render() if callable(render) else repr(value)


def redact_event_dict(logger, method_name, event_dict):
    """structlog processor: the event with its secrets replaced (after exceptions are rendered)."""
    return redact(event_dict, stringify=_structlog_text)


# Structural parts of a Sentry event whose key names are not data ("djangorestframework-api-key"
# in the installed modules is a package name, not a key).
_SENTRY_STRUCTURE_KEYS = frozenset({"modules", "sdk", "debug_meta"})


def redact_sentry_event(event):
    """The Sentry event (error or transaction) with its secrets replaced, at any depth."""
    return {
        key: (value if key in _SENTRY_STRUCTURE_KEYS else redact(value, stringify=None))
        for key, value in event.items()
    }
