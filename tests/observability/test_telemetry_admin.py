"""The telemetry admin: read-only, filterable, sortable, constant queries, resolve action."""

import datetime as dt

import pytest
from django.utils import timezone

from apps.observability.telemetry.models import ErrorGroup, RequestMinute, SlowRequest

pytestmark = pytest.mark.django_db

CHANGELISTS = {
    RequestMinute: "/admin/observability/requestminute/",
    SlowRequest: "/admin/observability/slowrequest/",
    ErrorGroup: "/admin/observability/errorgroup/",
}


def add_rows(count, start=0):
    """Rows whose slow-request durations and error-group counts do not follow their age."""
    now = timezone.now().replace(second=0, microsecond=0)
    for number in range(start, start + count):
        moment = now - dt.timedelta(minutes=number)
        route = f"/route-{number % 3}/"
        RequestMinute.objects.create(
            minute=moment,
            route=route,
            method="GET",
            requests=10,
            status_2xx=10 - number % 3,
            status_5xx=number % 3,
            duration_sum_ms=100.0 * (number + 1),
            duration_max_ms=50.0,
        )
        SlowRequest.objects.create(
            started_at=moment,
            method="GET",
            route=route,
            path=f"/path/{number}",
            status=200,
            duration_ms=1000 + (number * 7) % 11,
        )
        ErrorGroup.objects.create(
            fingerprint=f"fingerprint-{number}",
            exception_class="builtins.ValueError",
            frame="apps/x.py in y",
            route=route,
            method="GET",
            count=(number * 5) % 7 + 1,
            first_seen=moment,
            last_seen=moment,
        )


@pytest.mark.parametrize("model", list(CHANGELISTS))
def test_changelists_use_a_constant_number_of_queries(
    superuser_client, model, django_assert_max_num_queries
):
    add_rows(3)
    with django_assert_max_num_queries(20) as few:
        assert superuser_client.get(CHANGELISTS[model]).status_code == 200
    add_rows(40, start=3)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert superuser_client.get(CHANGELISTS[model]).status_code == 200


@pytest.mark.parametrize("model", list(CHANGELISTS))
def test_the_models_are_read_only(superuser_client, model):
    add_rows(1)
    item = model.objects.get()
    base = CHANGELISTS[model]

    assert superuser_client.get(f"{base}add/").status_code == 403
    assert superuser_client.get(f"{base}{item.pk}/delete/").status_code == 403
    page = superuser_client.get(f"{base}{item.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content


def test_request_minutes_show_the_error_rate_per_route_and_sort_by_it(superuser_client):
    add_rows(6)

    page = superuser_client.get(CHANGELISTS[RequestMinute], {"o": "6"})  # the error rate column

    assert page.status_code == 200
    rates = [row.row_error_rate for row in page.context["cl"].result_list]
    assert rates == sorted(rates)
    text = page.content.decode()
    assert "route error rate" in text.lower()
    # /route-2/: 2 errors in 10 requests in each of its rows.
    assert "20.00%" in text


def test_request_minutes_filter_by_route(superuser_client):
    add_rows(6)

    page = superuser_client.get(CHANGELISTS[RequestMinute], {"route": "/route-1/"})

    assert page.context["cl"].result_count == 2


def test_slow_requests_sort_by_duration(superuser_client):
    add_rows(5)

    page = superuser_client.get(CHANGELISTS[SlowRequest], {"o": "-4"})  # duration

    durations = [row.duration_ms for row in page.context["cl"].result_list]
    assert durations == sorted(durations, reverse=True)


def test_slow_requests_write_durations_in_milliseconds(superuser_client):
    add_rows(1)  # a duration of 1000 ms

    page = superuser_client.get(CHANGELISTS[SlowRequest])

    assert '<td class="field-duration">1,000 ms</td>' in page.content.decode()


def test_error_groups_sort_by_count_and_can_be_resolved(superuser_client):
    add_rows(4)
    page = superuser_client.get(CHANGELISTS[ErrorGroup], {"o": "-4"})  # count (after the checkbox)
    counts = [group.count for group in page.context["cl"].result_list]
    assert counts == sorted(counts, reverse=True)

    response = superuser_client.post(
        CHANGELISTS[ErrorGroup],
        {
            "action": "resolve",
            "_selected_action": list(ErrorGroup.objects.values_list("pk", flat=True)[:2]),
        },
    )

    assert response.status_code == 302
    assert ErrorGroup.objects.filter(status=ErrorGroup.Status.RESOLVED).count() == 2
    assert ErrorGroup.objects.filter(resolved_at__isnull=False).count() == 2
