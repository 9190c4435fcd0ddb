"""Secrets sent every way a client (or a failing dependency) can: none may appear in any output.

Each is unique and easy to search for; their shapes are what the redaction must recognise.
"""

# djangorestframework-api-key format: 8-character prefix, dot, 32-character secret.
API_KEY_PREFIX = "Cnry0001"
API_KEY = API_KEY_PREFIX + ".CanaryApiKeySecret0000000000000A"
BEARER_TOKEN = "canary-bearer-token-5b1d0e"
SESSION_COOKIE = "canary-session-cookie-9c2e7a"
CSRF_COOKIE = "canaryCsrfCookie4f8a1b"
BODY_PASSWORD = "canary-body-password-1a7f3c"
BODY_CARD_TOKEN = "canary-body-card-token-6d2b8e"
QUERY_TOKEN = "canary-query-token-3e9c4d"
QUERY_API_KEY = "canary-query-api-key-8f1a2b"
HEADER_API_KEY = "canary-x-api-key-header-2c7d9e"
MESSAGE_PASSWORD = "canary-message-password-7b3e1f"
DATABASE_PASSWORD = "canary-database-password-4d8c2a"
QUERY_PARAMETER = "canary-sql-parameter-0e5f6a"

# The API key's prefix is shown in clear on purpose (it names the key); its secret part is not.
ALL = [
    API_KEY.split(".", 1)[1],
    BEARER_TOKEN,
    SESSION_COOKIE,
    CSRF_COOKIE,
    BODY_PASSWORD,
    BODY_CARD_TOKEN,
    QUERY_TOKEN,
    QUERY_API_KEY,
    HEADER_API_KEY,
    MESSAGE_PASSWORD,
    DATABASE_PASSWORD,
    QUERY_PARAMETER,
]


def request_arguments(bearer=API_KEY):
    """(query string, headers, JSON body) carrying the client's canaries."""
    query = f"?token={QUERY_TOKEN}&api_key={QUERY_API_KEY}&page=2"
    headers = {
        "Authorization": f"Bearer {bearer}",
        "X-Api-Key": HEADER_API_KEY,
        "Cookie": f"sessionid={SESSION_COOKIE}; csrftoken={CSRF_COOKIE}",
        "Content-Type": "application/json",
    }
    body = {"password": BODY_PASSWORD, "card_token": BODY_CARD_TOKEN, "name": "alice"}
    return query, headers, body


def found_in(text):
    return [canary for canary in ALL if canary in text]
