"""apps/observability/logging/bound_context.py: structlog's merge and clear, the same results."""

import contextvars
import threading

import pytest
import structlog

from apps.observability.logging import bound_context


@pytest.fixture(autouse=True)
def nothing_bound():
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()


def merged(merge):
    return merge(None, "info", {"event": "x", "kept": "the event's own"})


def test_bound_keys_are_merged_as_structlog_merges_them():
    structlog.contextvars.bind_contextvars(tenant="acme", attempt=2, kept="bound")
    structlog.contextvars.unbind_contextvars("attempt")

    assert merged(bound_context.merge_contextvars) == merged(
        structlog.contextvars.merge_contextvars
    )
    assert merged(bound_context.merge_contextvars)["tenant"] == "acme"


def test_clearing_unbinds_every_key():
    structlog.contextvars.bind_contextvars(tenant="acme", attempt=2)

    bound_context.clear_contextvars()

    assert structlog.contextvars.get_contextvars() == {}
    assert merged(bound_context.merge_contextvars) == {"event": "x", "kept": "the event's own"}


def test_a_key_bound_in_another_thread_is_not_merged_here():
    def bind_elsewhere():
        structlog.contextvars.bind_contextvars(other_thread="yes")

    thread = threading.Thread(target=bind_elsewhere)
    thread.start()
    thread.join()

    assert "other_thread" not in merged(bound_context.merge_contextvars)


def test_clearing_leaves_other_context_variables_alone():
    unrelated = contextvars.ContextVar("unrelated")
    unrelated.set("kept")
    structlog.contextvars.bind_contextvars(tenant="acme")

    bound_context.clear_contextvars()

    assert unrelated.get() == "kept"
