"""structlog's context-local bindings (`bind_contextvars`), merged and cleared without walking
every context variable of the thread.

structlog keeps one context variable per key ever bound, and its `merge_contextvars` and
`clear_contextvars` find them by copying the thread's context and looking at every variable in
it: asgiref alone leaves one per URL resolver there once anything has reversed a URL, and the
request context merges once per log line and clears twice per request. These two look at
structlog's own variables only (its registry of them, `structlog.contextvars._CONTEXT_VARS`), and
do nothing while nothing has been bound in the process; they fall back to structlog's own
functions if a structlog release drops that registry. Same results: a key counts as bound while
its variable holds anything but structlog's Ellipsis.
"""

import structlog

_bound_variables = getattr(structlog.contextvars, "_CONTEXT_VARS", None)
_PREFIX_LENGTH = len(structlog.contextvars.STRUCTLOG_KEY_PREFIX)


def merge_contextvars(logger, method_name, event_dict):
    """Processor: structlog's merge_contextvars."""
    if _bound_variables is None:
        return structlog.contextvars.merge_contextvars(logger, method_name, event_dict)
    if _bound_variables:
        # A copy: another thread may bind a new key meanwhile.
        for name, variable in tuple(_bound_variables.items()):
            value = variable.get(Ellipsis)
            if value is not Ellipsis:
                event_dict.setdefault(name[_PREFIX_LENGTH:], value)
    return event_dict


def clear_contextvars():
    """structlog's clear_contextvars."""
    if _bound_variables is None:
        structlog.contextvars.clear_contextvars()
        return
    if _bound_variables:
        for variable in tuple(_bound_variables.values()):
            if variable.get(Ellipsis) is not Ellipsis:
                variable.set(Ellipsis)


def has_bindings():
    """Whether any key is bound in this context (merge_contextvars would add something)."""
    if _bound_variables is None:
        return bool(structlog.contextvars.get_contextvars())
    if not _bound_variables:
        return False
    return any(
        variable.get(Ellipsis) is not Ellipsis for variable in tuple(_bound_variables.values())
    )
