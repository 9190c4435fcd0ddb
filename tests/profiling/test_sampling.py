"""QueryInspectorMiddleware: NPLUSONE_SAMPLE_RATE of live requests inspected, findings buffered."""

import random

import pytest
from django.conf import settings as project_settings
from django.contrib.auth.models import Group, User
from django.core.exceptions import MiddlewareNotUsed
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.test import RequestFactory
from django.urls import include, path
from prometheus_client import REGISTRY
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from silk.models import Request as SilkRequest

from apps.profiling import findings
from apps.profiling.inspector import active_unit
from apps.profiling.middleware import QueryInspectorMiddleware
from apps.profiling.models import QueryFinding

from .test_nplusone import UserSerializer

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db]

ROUTE = "/sampling-test/groups/<int:limit>/"


def count_groups_one_by_one(request, limit=6):
    counts = [user.groups.count() for user in User.objects.order_by("pk")[:limit]]
    return JsonResponse({"counts": counts})


def read_one_row(request):
    return JsonResponse({"users": User.objects.count()})


class UserList(ListAPIView):
    """An N+1 whose call site is library code only: DRF's nested serializer field."""

    queryset = User.objects.order_by("pk")
    serializer_class = UserSerializer
    permission_classes = [AllowAny]
    authentication_classes = []
    pagination_class = None


urlpatterns = [
    path("sampling-test/groups/<int:limit>/", count_groups_one_by_one),
    path("sampling-test/one-row/", read_one_row),
    path("sampling-test/users/", UserList.as_view()),
    # Paths that are never inspected, answered here by the same N+1 view.
    path("stats", count_groups_one_by_one),
    path("silk/n-plus-one/", count_groups_one_by_one),
    path("static/n-plus-one/", count_groups_one_by_one),
    path("", include("project.urls")),
]


@pytest.fixture(autouse=True)
def users_in_groups():
    groups = [Group.objects.create(name=f"group {number}") for number in range(2)]
    for number in range(6):
        User.objects.create(username=f"user{number}").groups.set(groups)


@pytest.fixture
def sample_everything(settings):
    settings.NPLUSONE_SAMPLE_RATE = 1.0
    # Only the patterns under test: on a loaded machine any query may pass the slow threshold.
    settings.LOG_SLOW_QUERY_MS = 60_000


def counter(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def buffered():
    return list(findings.buffer.take().values())


def test_the_inspector_sits_inside_silk_and_outside_telemetry():
    middleware = project_settings.MIDDLEWARE
    inspector = middleware.index("apps.profiling.middleware.QueryInspectorMiddleware")
    assert middleware[inspector - 1] == "apps.profiling.silk_middleware.SilkyMiddleware"
    telemetry = "apps.observability.telemetry.middleware.TelemetryMiddleware"
    assert middleware[inspector + 1] == telemetry


def test_a_sampled_request_buffers_its_n_plus_one_under_the_route_template(
    client, sample_everything
):
    response = client.get("/sampling-test/groups/6/", headers={"X-Request-ID": "sampled-1"})

    assert response.status_code == 200
    (finding,) = buffered()
    assert (finding.kind, finding.source, finding.max_repeats) == ("n_plus_one", ROUTE, 6)
    assert finding.callsite.startswith("tests/profiling/test_sampling.py:")
    assert finding.last_request_id == "sampled-1"
    assert "auth_user_groups" in finding.sample_sql


def test_a_sampled_request_counts_its_findings_by_kind(client, sample_everything):
    before = counter("orders_query_findings_total", kind="n_plus_one")

    client.get("/sampling-test/groups/6/")

    assert counter("orders_query_findings_total", kind="n_plus_one") == before + 1


def test_findings_of_several_requests_reach_one_row_at_the_flush(client, sample_everything):
    client.get("/sampling-test/groups/6/")
    client.get("/sampling-test/groups/5/")

    assert findings.flush_findings() == 1

    row = QueryFinding.objects.get()
    assert (row.source, row.occurrences, row.max_repeats) == (ROUTE, 2, 6)


def test_a_request_without_findings_buffers_nothing(client, sample_everything):
    assert client.get("/sampling-test/one-row/").status_code == 200

    assert buffered() == []


def test_a_serializer_field_n_plus_one_is_found_behind_silk_and_the_inspector(
    client, sample_everything
):
    # Its call site is library code only; the frames of silk's middleware and of the inspector's
    # own middleware around it must not hide it.
    assert client.get("/sampling-test/users/").status_code == 200

    (finding,) = buffered()
    assert finding.kind == "n_plus_one"
    assert "in serializer field UserSerializer.groups" in finding.callsite


def test_a_request_recorded_by_silk_carries_silks_request_id(client, sample_everything, settings):
    settings.SILK_SAMPLE_PERCENT = 100.0

    client.get("/sampling-test/groups/6/")

    (finding,) = buffered()
    recorded = SilkRequest.objects.get(path="/sampling-test/groups/6/")
    assert finding.silk_request_id == str(recorded.pk)


def test_a_request_silk_did_not_record_has_no_silk_request_id(client, sample_everything):
    client.get("/sampling-test/groups/6/")

    (finding,) = buffered()
    assert finding.silk_request_id == ""


@pytest.mark.parametrize("path", ["/stats", "/silk/n-plus-one/", "/static/n-plus-one/"])
def test_stats_silk_and_static_paths_are_never_inspected(client, sample_everything, path):
    assert client.get(path).status_code == 200

    assert buffered() == []


def test_at_rate_zero_nothing_is_inspected_and_no_unit_is_left_behind(client, settings):
    settings.NPLUSONE_SAMPLE_RATE = 0.0
    before = counter("orders_query_findings_total", kind="n_plus_one")

    assert client.get("/sampling-test/groups/6/").status_code == 200

    assert buffered() == []
    assert counter("orders_query_findings_total", kind="n_plus_one") == before
    assert active_unit.get() is None


def test_at_rate_zero_the_middleware_takes_itself_out_of_the_chain(settings):
    settings.NPLUSONE_SAMPLE_RATE = 0.0

    with pytest.raises(MiddlewareNotUsed):
        QueryInspectorMiddleware(lambda request: HttpResponse())


def test_a_rate_below_one_inspects_that_share_of_requests(settings):
    settings.NPLUSONE_SAMPLE_RATE = 0.25
    inspected = []

    def view(request):
        inspected.append(active_unit.get() is not None)
        return HttpResponse()

    middleware = QueryInspectorMiddleware(view)
    factory = RequestFactory()
    random.seed(7)
    expected = [random.random() < 0.25 for _ in range(400)]
    random.seed(7)
    for _ in range(400):
        middleware(factory.get("/sampling-test/one-row/"))

    assert inspected == expected
    assert 60 < sum(inspected) < 140


def test_a_failure_while_recording_is_counted_and_the_response_goes_out(
    client, sample_everything, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError("findings buffer is broken")

    monkeypatch.setattr(findings, "record_findings", broken)
    before = counter("orders_query_findings_record_failures_total")

    response = client.get("/sampling-test/groups/6/")

    assert response.status_code == 200
    assert len(response.json()["counts"]) == 6
    assert counter("orders_query_findings_record_failures_total") == before + 1


def test_queries_outside_a_sampled_request_are_not_inspected(client, sample_everything):
    client.get("/sampling-test/one-row/")
    with connection.cursor() as cursor:
        for number in range(6):
            cursor.execute("SELECT %s", [number])

    assert buffered() == []
