"""pytest marker `no_nplusone`: the test fails when its body runs an N+1 query pattern.

    @pytest.mark.no_nplusone               # threshold from settings.NPLUSONE_THRESHOLD
    @pytest.mark.no_nplusone(threshold=3)
    pytestmark = [pytest.mark.django_db, pytest.mark.no_nplusone]   # a whole module

Only the test call is watched, not its fixtures (factories may create rows in a loop). The whole
body is one unit of work: a test that repeats the same work on purpose in its body (creates rows
through a service in a loop, sends hundreds of requests) opts out of its module's marker with

    @pytest.mark.allow_nplusone(reason="...")

Registered by `pytest_plugins` in tests/conftest.py.
"""

import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "no_nplusone(threshold=None): fail the test when it runs an N+1 query pattern",
    )
    config.addinivalue_line(
        "markers",
        "allow_nplusone(reason): exempt the test from a module's or class's no_nplusone marker",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    marker = item.get_closest_marker("no_nplusone")
    if marker is None:
        return (yield)
    allowed = item.get_closest_marker("allow_nplusone")
    if allowed is not None:
        if not (allowed.kwargs.get("reason") or allowed.args):
            raise pytest.UsageError(f"{item.nodeid}: allow_nplusone needs a reason")
        return (yield)
    from apps.profiling.nplusone import assert_no_nplusone

    with assert_no_nplusone(threshold=marker.kwargs.get("threshold")):
        return (yield)
