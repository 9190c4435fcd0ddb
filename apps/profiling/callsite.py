"""Where a query comes from: project frames, the template line, the serializer field.

Walked only for queries inside a unit of work (apps/profiling/inspector.py). Frames are classified
by file name once (memoised); locals are only read for DRF frames.
"""

import functools
import inspect
import os
import sys
from pathlib import Path

from django.conf import settings
from django.db.models.query import QuerySet
from django.template.base import Node

# How many project frames (innermost first) tell call sites apart: a helper called from two loops
# is two call sites, a helper called in one loop is one.
PROJECT_FRAMES_IN_KEY = 3
# After the first project frame, how many more frames are looked at for the others: bounds the
# walk (a test or a request runs under dozens of framework frames).
FRAMES_AFTER_FIRST_PROJECT_FRAME = 8

PROJECT, LIBRARY, DJANGO_DB, DRF, SKIP_UNIT, INFRASTRUCTURE = range(6)
# Project code that runs around every query or request (execute wrappers, middleware, the
# manage.py entry point) but is never where an N+1 is fixed: passed over when looking for the call
# site.
INFRASTRUCTURE_DIRS = ("apps/observability/", "manage.py")

# Queries issued inside these are batches or chunks of one call, never a repeated pattern.
_BATCH_CODES = frozenset(
    {
        QuerySet.bulk_create.__code__,
        QuerySet._batched_insert.__code__,
        QuerySet.bulk_update.__code__,
        QuerySet._iterator.__code__,
    }
)
_TEMPLATE_NODE_CODE = Node.render_annotated.__code__
_PROFILING_DIR = str(Path(__file__).resolve().parent) + os.sep
# Code of frames that wrap every request or every ORM query without being where a query comes
# from (silk's middleware and its patched SQLCompiler.execute_sql, the inspector's middleware):
# passed over like the connection's execute wrappers. Any other silk or profiling frame still
# marks a query as theirs.
_pass_through_codes = set()


class CallSite:
    """Where one query was issued; `key` tells call sites apart, `label` names one for a person."""

    __slots__ = ("key", "label")

    def __init__(self, key, label):
        self.key = key
        self.label = label


@functools.cache
def _library_prefixes():
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return tuple(str(Path(prefix).resolve()) + os.sep for prefix in prefixes)


@functools.cache
def _base_dir():
    return str(Path(settings.BASE_DIR).resolve()) + os.sep


@functools.lru_cache(maxsize=2048)
def classify(filename):
    """(category, display path) of a code file."""
    path = filename
    if os.path.isabs(filename):
        path = os.path.realpath(filename)
    if path.startswith(_PROFILING_DIR) or os.sep + "silk" + os.sep in path:
        # The inspector's own queries and silk's are never findings.
        return SKIP_UNIT, path
    in_library = (
        "site-packages" in path or "dist-packages" in path or path.startswith(_library_prefixes())
    )
    if in_library:
        marker = "site-packages" + os.sep
        display = path.split(marker, 1)[1] if marker in path else path
        if display.startswith("django" + os.sep + "db" + os.sep):
            return DJANGO_DB, display
        if display.startswith("rest_framework" + os.sep):
            return DRF, display
        return LIBRARY, display
    base = _base_dir()
    if path.startswith(base):
        display = path[len(base) :]
        if display.replace(os.sep, "/").startswith(INFRASTRUCTURE_DIRS):
            return INFRASTRUCTURE, display
        return PROJECT, display
    return LIBRARY, path


@functools.cache
def _drf_field_class():
    try:
        from rest_framework.fields import Field
    except ImportError:  # pragma: no cover - DRF is a dependency of the project
        return None
    return Field


@functools.lru_cache(maxsize=512)
def _class_location(cls):
    try:
        filename = inspect.getsourcefile(cls)
        line = inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        return None
    category, display = classify(filename)
    return f"{display}:{line}" if category == PROJECT else None


def _serializer_field(frame):
    """'OrderSerializer.customer' when `frame` runs a bound DRF field, else None."""
    field_class = _drf_field_class()
    owner = frame.f_locals.get("self")
    if field_class is None or not isinstance(owner, field_class):
        return None
    field_name = getattr(owner, "field_name", None)
    parent = getattr(owner, "parent", None)
    if not field_name or parent is None:
        return None
    return type(parent), f"{type(parent).__name__}.{field_name}"


def _template_line(frame):
    node = frame.f_locals.get("self")
    origin = getattr(node, "origin", None)
    token = getattr(node, "token", None)
    if origin is None or token is None:
        return None
    name = origin.template_name or origin.name
    return f"{name}:{token.lineno}"


def pass_through(function):
    """Let the call-site walk pass over frames running `function` (returned unchanged).

    For code in apps/profiling or silk that sits around other code's queries: without it a query
    whose call site is library code (an admin page, a DRF serializer field) would be ignored as
    the inspector's or silk's own.
    """
    _pass_through_codes.add(function.__code__)
    return function


def wrapper_codes(execute_wrappers):
    """Code objects of a connection's execute wrappers (functions or callable objects)."""
    codes = set()
    for wrapper in execute_wrappers:
        function = wrapper if hasattr(wrapper, "__code__") else type(wrapper).__call__
        code = getattr(function, "__code__", None)
        if code is not None:
            codes.add(code)
    return codes


def find_callsite(frame, skipped_codes=frozenset()):
    """The CallSite of a query whose innermost caller frame is `frame`, or None to ignore it.

    Frames running `skipped_codes` (the connection's other execute wrappers) or registered with
    `pass_through` are passed over.
    None: the query belongs to a bulk_create or bulk_update batch, an iterator() chunk, the
    inspector or silk.
    """
    project = []
    template = None
    serializer = None
    fallback = None
    remaining = FRAMES_AFTER_FIRST_PROJECT_FRAME
    while frame is not None:
        code = frame.f_code
        if code in _BATCH_CODES:
            return None
        if code in skipped_codes or code in _pass_through_codes:
            frame = frame.f_back
            continue
        category, display = classify(code.co_filename)
        if category == PROJECT:
            project.append(f"{display}:{frame.f_lineno}")
            if len(project) == PROJECT_FRAMES_IN_KEY:
                break
        elif project:
            remaining -= 1
            if not remaining:
                break
        else:
            if category == SKIP_UNIT:
                return None
            if code is _TEMPLATE_NODE_CODE:
                if template is None:
                    template = _template_line(frame)
            elif category == DRF:
                if serializer is None:
                    serializer = _serializer_field(frame)
            elif category == LIBRARY and fallback is None:
                fallback = f"{display}:{frame.f_lineno}"
        frame = frame.f_back
    if project:
        location = project[0]
    elif serializer is not None and _class_location(serializer[0]):
        location = _class_location(serializer[0])
    else:
        location = fallback or "<unknown>"
    label = location
    if template is not None:
        label += f" in template {template}"
    if serializer is not None:
        label += f" in serializer field {serializer[1]}"
    return CallSite((tuple(project) or (location,), template, serializer and serializer[1]), label)
