"""The one redaction used by logs and Sentry: sensitive keys at any depth, secrets in any text."""

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from apps.common.redaction import (
    REDACTED,
    _redact_text,
    cannot_hold_secret,
    redact,
    redact_event_dict,
    redact_sentry_event,
    redact_text,
)

API_KEY = "AbCd1234.abcdefghijklmnopqrstuvwxyz012345"


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWORD",
        "db_password",
        "passwd",
        "secret",
        "client_secret",
        "SECRET_KEY",
        "token",
        "access_token",
        "api_key",
        "apikey",
        "API Key",
        "x-api-key",
        "x_api_key",
        "HTTP_X_API_KEY",
        "Authorization",
        "HTTP_AUTHORIZATION",
        "cookie",
        "Set-Cookie",
        "HTTP_COOKIE",
        "sessionid",
        "session",
        "csrftoken",
        "csrfmiddlewaretoken",
        "dsn",
        "SENTRY_DSN",
    ],
)
def test_values_under_sensitive_keys_are_replaced(key):
    assert redact({key: "s3cr3t-value"}) == {key: REDACTED}


@pytest.mark.parametrize("key", ["name", "status", "route", "request_id", "path", "author"])
def test_values_under_ordinary_keys_are_kept(key):
    assert redact({key: "visible"}) == {key: "visible"}


def test_sensitive_keys_are_found_at_any_depth_of_dicts_and_lists():
    event = {
        "request": {"headers": [{"Authorization": "Bearer x"}], "meta": {"db": {"password": 1}}}
    }

    assert redact(event) == {
        "request": {
            "headers": [{"Authorization": REDACTED}],
            "meta": {"db": {"password": REDACTED}},
        }
    }


def test_a_sensitive_key_with_a_nested_value_is_replaced_whole():
    assert redact({"cookies": {"sessionid": "a", "theme": "dark"}}) == {"cookies": REDACTED}


def test_absent_secrets_stay_visible_as_absent():
    assert redact({"token": None, "password": ""}) == {"token": None, "password": ""}


def test_bearer_tokens_in_text_are_replaced():
    assert redact_text("sent Bearer eyJhbGciOi.J9x-_ along") == f"sent Bearer {REDACTED} along"


def test_api_keys_in_text_keep_only_their_public_prefix():
    assert redact_text(f"key {API_KEY} rejected") == f"key AbCd1234.{REDACTED} rejected"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "postgres://orders:hunter2@db:5432/orders",
            f"postgres://orders:{REDACTED}@db:5432/orders",
        ),
        ("redis://:hunter2@cache:6379/0", f"redis://:{REDACTED}@cache:6379/0"),
        ("see https://user:pw@example.com/x?y=1", f"see https://user:{REDACTED}@example.com/x?y=1"),
    ],
)
def test_passwords_in_urls_are_replaced(text, expected):
    assert redact_text(text) == expected


def test_urls_without_credentials_are_kept():
    text = "GET http://example.com:8080/api/v1/orders/?page=2 from 10.0.0.1"

    assert redact_text(text) == text


def test_sensitive_query_parameters_in_any_text_are_replaced():
    text = "/api/v1/orders/?page=2&token=abc123&api_key=def456&access_token=ghi&apiKey=jkl"

    assert redact_text(text) == (
        f"/api/v1/orders/?page=2&token={REDACTED}&api_key={REDACTED}"
        f"&access_token={REDACTED}&apiKey={REDACTED}"
    )


def test_sensitive_pairs_in_reprs_and_headers_are_replaced():
    text = "{'password': 'a b c', \"HTTP_COOKIE\": \"sessionid=x; csrftoken=y\", 'user': 'bob'}"

    assert redact_text(text) == (
        f"{{'password': '{REDACTED}', \"HTTP_COOKIE\": \"{REDACTED}\", 'user': 'bob'}}"
    )


def test_cookie_header_values_are_all_replaced():
    redacted = redact_text("Cookie: sessionid=abc; csrftoken=def")

    assert "abc" not in redacted
    assert "def" not in redacted


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Basic dXNlcjpw", f"Authorization: Basic {REDACTED}"),
        ("Authorization: Bearer abc.def", f"Authorization: Bearer {REDACTED}"),
        ('{"Authorization": "Bearer abc"}', f'{{"Authorization": "{REDACTED}"}}'),
    ],
)
def test_authorization_header_text_is_replaced(text, expected):
    assert redact_text(text) == expected


def test_text_without_secrets_is_returned_unchanged():
    text = "GET /api/v1/orders/<int:pk>/ 200 in 12.5 ms, 3 queries"

    assert redact_text(text) is text


@pytest.mark.parametrize("length", [20, 150, 5000], ids=["short", "medium", "long"])
def test_text_is_redacted_every_time_it_is_seen_whatever_its_length(length):
    text = f"token={'t' * length}"

    assert [redact_text(text) for _ in range(3)] == [f"token={REDACTED}"] * 3


def test_a_secret_differing_from_a_remembered_text_is_still_redacted():
    assert redact_text("status=ok") == "status=ok"

    assert redact_text("secret=ok") == f"secret={REDACTED}"


def test_log_events_render_unknown_objects_as_redacted_text():
    class Request:
        def __repr__(self):
            return "<WSGIRequest: GET '/x?token=abc123'>"

    event = redact_event_dict(None, "info", {"event": "hit", "request": Request(), "count": 3})

    assert event == {
        "event": "hit",
        "request": f"<WSGIRequest: GET '/x?token={REDACTED}'>",
        "count": 3,
    }


def test_sentry_events_keep_package_names_that_look_like_keys():
    event = {"modules": {"djangorestframework-api-key": "3.1.0"}, "extra": {"api_key": "k"}}

    assert redact_sentry_event(event) == {
        "modules": {"djangorestframework-api-key": "3.1.0"},
        "extra": {"api_key": REDACTED},
    }


# Every character a pattern turns on, and the ones around them.
_TRICKY_CHARACTERS = "aAbBeErRtTzZkKnNoOsSpPwWdDcCfFxXiI0123456789 :=./@-_+'\"&;\n\u017f\u212a"


@given(
    st.one_of(
        st.text(alphabet=_TRICKY_CHARACTERS, max_size=60),
        st.text(alphabet="0123456789+-.:TZ abBt", max_size=60),
        st.text(alphabet="0123456789aAzZ", max_size=60),
    )
)
@hypothesis_settings(max_examples=3000, deadline=None)
def test_text_said_to_hold_no_secret_is_text_redaction_would_not_change(text):
    if cannot_hold_secret(text):
        assert _redact_text(text) == text


@pytest.mark.parametrize(
    "text",
    ["2026-12-05T21:32:17.382657Z", "3f9c2a7e5b1d4c6e8a0b2d4f6e8c0a1b", "GET", "request", "12.5"],
)
def test_request_ids_timestamps_and_words_are_known_to_hold_no_secret(text):
    assert cannot_hold_secret(text)


@pytest.mark.parametrize(
    "text",
    [
        *("token=abc", "Bearer abc", f"abcdefgh.{'x' * 32}", "https://u:p@h", "a.b:c"),
        f"12345678.{'9' * 32}",  # an API key's shape, in digits alone
    ],
)
def test_text_with_a_separator_and_letters_or_an_api_keys_length_is_searched(text):
    assert not cannot_hold_secret(text)
