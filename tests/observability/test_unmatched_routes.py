"""Requests that no URL pattern matched, or only a catch-all (the API's JSON 404 for any other
path under /api/), carry one route label everywhere: `<unmatched>`, never the catch-all's regex.
"""

import pytest

from apps.common.request_context import UNMATCHED_ROUTE
from apps.observability.telemetry import aggregation as telemetry
from tests.observability.logging_capture import access_lines, captured_console, json_lines
from tests.observability.test_metrics import change_between, scrape

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_telemetry_buffer")]

UNMATCHED_PATHS = ["/api/v1/no-such-thing/", "/no/such/page/"]


@pytest.mark.parametrize("path", UNMATCHED_PATHS)
def test_telemetry_counts_unmatched_paths_under_the_unmatched_route(client, path):
    assert client.get(path).status_code == 404

    routes = {route for (_, route, _) in telemetry.aggregator.take().rows}

    assert routes == {UNMATCHED_ROUTE}


def test_the_access_line_of_an_api_path_nothing_serves_has_the_unmatched_route(client):
    with captured_console() as console:
        assert client.get("/api/v1/no-such-thing/").status_code == 404

    (line,) = access_lines(json_lines(console.getvalue()))

    assert line["route"] == UNMATCHED_ROUTE


@pytest.mark.usefixtures("metrics_token")
@pytest.mark.parametrize("path", UNMATCHED_PATHS)
def test_prometheus_counts_unmatched_paths_under_the_unmatched_view(client, path):
    before = scrape(client)
    client.get(path)
    delta = change_between(before, scrape(client))

    name = "django_http_responses_total_by_status_view_method_total"
    assert delta(name, status="404", view=UNMATCHED_ROUTE, method="GET") == 1
