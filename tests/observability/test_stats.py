"""/stats: who may read it, the window, and figures summed over every process."""

import datetime as dt
import os
import time

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.observability.telemetry import aggregation as telemetry
from apps.observability.telemetry import rows as telemetry_rows
from apps.observability.telemetry.models import RequestMinute
from tests.observability.conftest import bearer, grant_ops_permission

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("empty_telemetry_buffer", "metrics_token"),
]


def get_stats(client, query=""):
    response = client.get(f"/stats{query}", headers=bearer())
    assert response.status_code == 200, response.content
    return response.json()


def flush_from_process(requests, minute):
    """What one process's flusher writes: `requests` is a list of (route, status, duration)."""
    batch_aggregator = telemetry.Aggregator()
    for route, status, duration_ms in requests:
        batch_aggregator.record(
            minute, route, "GET", status, duration_ms, 1, 0.5, duration_ms >= 1000
        )
    telemetry.write_batch(batch_aggregator.take())


def test_anonymous_callers_get_401(client):
    response = client.get("/stats")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_a_wrong_token_gets_401(client):
    assert client.get("/stats", headers=bearer("wrong")).status_code == 401


def test_signed_in_users_who_are_not_staff_get_403(client):
    user = get_user_model().objects.create_user("customer", password="irrelevant")
    client.force_login(user)

    assert client.get("/stats").status_code == 403


def test_sessions_of_staff_holding_the_ops_permission_and_the_token_may_read(client):
    assert client.get("/stats", headers=bearer()).status_code == 200
    staff = get_user_model().objects.create_user("ops", password="irrelevant", is_staff=True)
    client.force_login(grant_ops_permission(staff))
    assert client.get("/stats").status_code == 200


@pytest.mark.parametrize("minutes", ["abc", "0", "-5", "1441", "1.5"])
def test_a_bad_window_is_a_400_naming_the_parameter(client, minutes):
    response = client.get(f"/stats?minutes={minutes}", headers=bearer())

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "bad_request"
    assert error["message"].startswith("minutes:")
    assert list(error["fields"]) == ["minutes"]


def test_an_empty_window_answers_zeros(client):
    stats = get_stats(client)

    assert stats["requests"] == 0
    assert stats["status"] == {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0}
    assert (stats["error_rate"], stats["slow_rate"]) == (0.0, 0.0)
    assert stats["latency_ms"]["p95"] is None
    assert stats["routes"] == []
    assert stats["per_minute"] == []
    assert stats["window"]["minutes"] == 60


def test_figures_are_summed_over_processes_routes_and_minutes(client):
    now = telemetry.minute_start(time.time())
    previous = now - 60
    # Two processes flush into the same minute rows.
    flush_from_process([("/a/", 200, 10.0)] * 6 + [("/a/", 500, 30.0)] * 2, now)
    flush_from_process([("/a/", 200, 20.0)] * 2 + [("/b/", 404, 5.0)] * 3, now)
    flush_from_process([("/b/", 302, 1500.0)], previous)

    stats = get_stats(client)

    assert stats["requests"] == 14
    assert stats["status"] == {"2xx": 8, "3xx": 1, "4xx": 3, "5xx": 2}
    assert stats["errors"] == 2
    assert stats["slow"] == 1
    assert stats["error_rate"] == round(2 / 14, 4)
    assert stats["slow_rate"] == round(1 / 14, 4)
    assert stats["latency_ms"]["avg"] == round((60 + 60 + 40 + 15 + 1500) / 14, 2)
    assert stats["latency_ms"]["max"] == 1500.0
    routes = {(route["route"], route["method"]): route for route in stats["routes"]}
    assert routes[("/a/", "GET")]["requests"] == 10
    assert routes[("/a/", "GET")]["error_rate"] == 0.2
    assert routes[("/b/", "GET")]["slow"] == 1
    assert [route["route"] for route in stats["routes"]] == ["/a/", "/b/"]  # busiest first
    assert [point["requests"] for point in stats["per_minute"]] == [1, 13]
    assert stats["per_minute"][1]["minute"] == telemetry.as_datetime(now).isoformat()
    assert stats["per_minute"][1]["status"]["5xx"] == 2


def test_the_window_leaves_older_minutes_out(client):
    now = telemetry.minute_start(time.time())
    flush_from_process([("/a/", 200, 10.0)], now)
    flush_from_process([("/a/", 200, 10.0)] * 2, now - 10 * 60)
    flush_from_process([("/a/", 200, 10.0)] * 4, now - 2 * 60 * 60)

    assert get_stats(client, "?minutes=5")["requests"] == 1
    assert get_stats(client)["requests"] == 3
    assert get_stats(client, "?minutes=1440")["requests"] == 7


def test_latency_percentiles_come_from_the_summed_histogram(client):
    now = telemetry.minute_start(time.time())
    durations = [float(value) for value in range(1, 1001)]  # 1 ms .. 1000 ms, evenly
    flush_from_process([("/p/", 200, duration) for duration in durations[::2]], now)
    flush_from_process([("/p/", 200, duration) for duration in durations[1::2]], now)

    latency = get_stats(client)["latency_ms"]

    for name, true_value in (("p50", 500.0), ("p95", 950.0), ("p99", 990.0)):
        lower, upper = telemetry_rows.bucket_range(telemetry.bucket_index(true_value))
        assert lower <= latency[name] <= upper, (name, latency[name])


def test_the_answer_tells_which_process_answered(client):
    process = get_stats(client)["process"]

    assert process["pid"] == os.getpid()
    assert process["uptime_seconds"] >= 0
    assert "default" in process["database_pools"]


def test_stats_requests_are_not_counted(client):
    get_stats(client)
    client.get("/stats")

    assert telemetry.aggregator.take().rows == {}


def test_two_queries_whatever_the_window(client, django_assert_num_queries):
    now = timezone.now().replace(second=0, microsecond=0)
    RequestMinute.objects.bulk_create(
        RequestMinute(
            minute=now - dt.timedelta(minutes=number),
            route=f"/r{number % 7}/",
            method="GET",
            requests=1,
            status_2xx=1,
            duration_sum_ms=5,
            duration_max_ms=5,
            bucket_07=1,
        )
        for number in range(100)
    )

    with django_assert_num_queries(2):
        stats = get_stats(client, "?minutes=1440")

    assert stats["requests"] == 100
    assert len(stats["per_minute"]) == 100
