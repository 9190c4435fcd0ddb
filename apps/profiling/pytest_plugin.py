"""pytest marker `no_nplusone`: the test fails when its body runs an N+1 query pattern.

    @pytest.mark.no_nplusone               # threshold from settings.NPLUSONE_THRESHOLD
    @pytest.mark.no_nplusone(threshold=3)

Only the test call is watched, not its fixtures (factories may create rows in a loop).
Registered by `pytest_plugins` in tests/conftest.py.
"""

import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "no_nplusone(threshold=None): fail the test when it runs an N+1 query pattern",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    marker = item.get_closest_marker("no_nplusone")
    if marker is None:
        return (yield)
    from apps.profiling.nplusone import assert_no_nplusone

    with assert_no_nplusone(threshold=marker.kwargs.get("threshold")):
        return (yield)
