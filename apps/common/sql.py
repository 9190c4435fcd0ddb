"""SQL fingerprints: one statement shape whatever its literals, IN lists or VALUES rows.

`normalise_sql` is memoised: the statements of a process are a small, fixed set of shapes (the ORM
always sends placeholders), so each is rewritten once, not on every execution.
"""

import functools
import hashlib
import re

# Statements that are never findings: transactions, savepoints, connection set-up, server-side
# cursor traffic (iterator() on PostgreSQL).
IGNORED_KEYWORDS = frozenset(
    {
        "BEGIN",
        "START",
        "COMMIT",
        "END",
        "ROLLBACK",
        "SAVEPOINT",
        "RELEASE",
        "SET",
        "SHOW",
        "RESET",
        "PRAGMA",
        "DECLARE",
        "FETCH",
        "MOVE",
        "CLOSE",
        "DISCARD",
        "DEALLOCATE",
    }
)
MAX_SQL_CHARS = 2000

_STRING = re.compile(r"(?<![\w\"])[EeNnXx]?'(?:[^']|'')*'")
_NUMBER = re.compile(r"(?<![\w.\"$%])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b")
_NAMED_PLACEHOLDER = re.compile(r"%\(\w+\)s|(?<![\w?])\?(?![\w?])")
# SAVEPOINT, RELEASE SAVEPOINT and ROLLBACK TO SAVEPOINT "s140012_x1"
_SAVEPOINT = re.compile(r"\b(SAVEPOINT)\s+(\"[^\"]+\"|\w+)", re.I)
_CURSOR_NAME = re.compile(r"\"?_django_curs_\w+\"?")
_IN_LIST = re.compile(r"\bIN\s*\(\s*%s(?:\s*,\s*%s)*\s*\)", re.I)
_ROW = r"\((?:[^()']|'(?:[^']|'')*')*\)"
_MULTI_ROW_VALUES = re.compile(rf"\bVALUES\s*({_ROW})(?:\s*,\s*{_ROW})+", re.I)
_WHITESPACE = re.compile(r"\s+")


@functools.lru_cache(maxsize=4096)
def normalise_sql(sql):
    """(normalised SQL, ignored): literals and placeholders become %s, lists and names collapse.

    `ignored` is true for statements that are never findings: transactions, savepoints, set-up,
    cursor traffic and multi-row INSERTs (bulk_create batches).
    """
    text = sql.strip()
    keyword = text[:12].split(None, 1)[0].upper().rstrip(";") if text else ""
    multi_row = _MULTI_ROW_VALUES.search(text) is not None
    text = _SAVEPOINT.sub(r"\1 %s", text)
    text = _CURSOR_NAME.sub('"_django_curs"', text)
    text = _STRING.sub("%s", text)
    text = _NUMBER.sub("%s", text)
    text = _NAMED_PLACEHOLDER.sub("%s", text)
    text = _IN_LIST.sub("IN (...)", text)
    text = _MULTI_ROW_VALUES.sub(r"VALUES \1", text)
    text = _WHITESPACE.sub(" ", text)[:MAX_SQL_CHARS]
    return text, keyword in IGNORED_KEYWORDS or multi_row


@functools.lru_cache(maxsize=4096)
def fingerprint_of(normalised_sql):
    """A short stable digest of a normalised statement (16 hex characters)."""
    return hashlib.blake2b(normalised_sql.encode(), digest_size=8).hexdigest()
