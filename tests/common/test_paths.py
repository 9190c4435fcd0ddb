"""The one list of ops paths that every component leaves out."""

import pytest

from apps.common.paths import is_ops_path


@pytest.mark.parametrize(
    "path",
    [
        "/health",
        "/ready/",
        "/health-detailed",
        "/metrics",
        "/stats",
        "/static/ops/ops.css",
        "/silk/",
    ],
)
def test_probes_scrapes_ops_json_static_files_and_silk_are_ops_paths(path):
    assert is_ops_path(path)


@pytest.mark.parametrize("path", ["/", "/healthy-customers/", "/api/v1/orders/", "/admin/ops/"])
def test_the_service_and_its_dashboards_are_not(path):
    assert not is_ops_path(path)
