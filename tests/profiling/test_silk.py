"""django-silk in this process (installed: SILK_ENABLED defaults to on outside production)."""

import base64
import datetime as dt
import io
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.db.models.sql.compiler import SQLCompiler
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient
from silk.config import SilkyConfig
from silk.models import Request, Response, SQLQuery

from apps.common.ops_access import may_view_ops
from apps.common.paths import is_ops_path
from apps.profiling.silk import should_record
from tests.observability.conftest import grant_ops_permission
from tests.orders.factories import make_api_key, make_organization

pytestmark = pytest.mark.django_db

CUSTOMERS = "/api/v1/customers/"
# silk's mask, or the project's redaction applied on top of it.
MASKED = {"********************", "[REDACTED]"}


@pytest.fixture
def record_everything(settings):
    settings.SILK_SAMPLE_PERCENT = 100.0


@pytest.fixture
def api_key():
    _, key = make_api_key(make_organization())
    return key


@pytest.fixture
def api(api_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    return client


def login(client, *, is_staff, ops_permission=False):
    user = get_user_model().objects.create_user(
        "someone", "someone@example.com", "irrelevant", is_staff=is_staff
    )
    client.force_login(grant_ops_permission(user) if ops_permission else user)
    return client


def test_anonymous_user_is_sent_to_the_login_page(client):
    response = client.get("/silk/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_non_staff_user_is_refused(client):
    assert login(client, is_staff=False).get("/silk/").status_code == 403


def test_staff_user_without_the_ops_permission_is_refused(client):
    assert login(client, is_staff=True).get("/silk/").status_code == 403


def test_staff_user_holding_the_ops_permission_sees_the_summary(client):
    assert login(client, is_staff=True, ops_permission=True).get("/silk/").status_code == 200


def test_inactive_superuser_is_refused_by_the_permission():
    gone = get_user_model()(username="gone", is_staff=True, is_superuser=True, is_active=False)
    assert may_view_ops(gone) is False


def test_api_post_with_a_body_is_recorded_at_100_percent(api, record_everything):
    response = api.post(CUSTOMERS, {"email": "ada@example.com", "name": "Ada"}, format="json")
    assert response.status_code == 201, response.content
    recorded = Request.objects.get(path=CUSTOMERS)
    assert recorded.method == "POST"
    assert json.loads(recorded.body) == {"email": "ada@example.com", "name": "Ada"}
    assert Response.objects.get(request=recorded).status_code == 201
    assert SQLQuery.objects.filter(request=recorded).exists()


def test_authorization_header_and_api_key_are_masked_in_the_record(api, api_key, record_everything):
    api.post(CUSTOMERS, {"email": "ada@example.com", "name": "Ada"}, format="json")
    recorded = Request.objects.get(path=CUSTOMERS)
    headers = json.loads(recorded.encoded_headers)
    assert headers["authorization"] in MASKED
    secret = api_key.split(".", 1)[1]
    stored = [recorded.encoded_headers, recorded.body, recorded.raw_body, recorded.query_params]
    assert not any(secret in (text or "") for text in stored)


def test_api_key_and_session_headers_are_masked_in_the_record(client, record_everything):
    client.get(
        "/api/v1/customers/",
        HTTP_X_API_KEY="abcd1234.header-secret",
        HTTP_X_CSRFTOKEN="csrf-secret",
        HTTP_COOKIE="sessionid=session-secret; csrftoken=csrf-secret",
    )
    headers = json.loads(Request.objects.get().encoded_headers)
    assert headers["x-api-key"] in MASKED
    assert headers["x-csrftoken"] in MASKED
    assert headers["cookie"] in MASKED
    assert "secret" not in Request.objects.get().encoded_headers


def test_sensitive_body_fields_are_masked_in_the_record(api, record_everything):
    fields = {
        "email": "ada@example.com",
        "name": "Ada",
        "password": "body-secret-1",
        "api_key": "body-secret-2",
        "nested": {"access_token": "body-secret-3", "client_secret": "body-secret-4"},
    }
    assert api.post(CUSTOMERS, fields, format="json").status_code == 201
    recorded = Request.objects.get(path=CUSTOMERS)
    assert "body-secret" not in recorded.body
    assert "body-secret" not in recorded.raw_body
    assert json.loads(recorded.body)["email"] == "ada@example.com"


def test_sensitive_query_parameters_are_masked_in_the_record(api, record_everything):
    api.get(CUSTOMERS, {"api_key": "query-secret-1", "token": "query-secret-2", "search": "Ada"})
    recorded = Request.objects.get(path=CUSTOMERS)
    assert "query-secret" not in recorded.query_params
    assert json.loads(recorded.query_params)["search"] == "Ada"


def test_login_password_and_session_key_are_not_in_the_record(client, record_everything):
    get_user_model().objects.create_user("staff", password="irrelevant-pass", is_staff=True)
    response = client.post("/admin/login/", {"username": "staff", "password": "irrelevant-pass"})
    assert response.status_code == 302
    session_key = client.cookies["sessionid"].value
    login_request = Request.objects.get(path="/admin/login/", method="POST")
    assert "irrelevant-pass" not in login_request.body + (login_request.raw_body or "")
    stored = Response.objects.get(request=login_request)
    assert session_key not in stored.encoded_headers
    assert session_key not in base64.b64decode(stored.raw_body).decode()


def test_new_api_key_shown_in_the_admin_is_masked_in_the_record(
    client, record_everything, monkeypatch
):
    # The changelist is larger than the 16 KiB cap: record it whole to see what would be stored.
    monkeypatch.setitem(SilkyConfig().attrs, "SILKY_MAX_RESPONSE_BODY_SIZE", -1)
    superuser = get_user_model().objects.create_superuser("root", "root@example.com", "x")
    client.force_login(superuser)
    organization = make_organization()
    response = client.post(
        "/admin/tenants/organizationapikey/add/",
        {"name": "ci", "organization": organization.pk},
        follow=True,
    )
    assert response.status_code == 200
    message = next(str(message) for message in response.context["messages"])
    secret = re.search(r"is: [A-Za-z0-9]{8}\.([A-Za-z0-9]{32})\.", message).group(1)
    assert secret in response.content.decode()
    stored_pages = Response.objects.filter(request__path="/admin/tenants/organizationapikey/")
    assert stored_pages.exists()
    for stored in stored_pages:
        assert secret not in base64.b64decode(stored.raw_body).decode()
        assert secret not in stored.body


def test_request_body_over_16_kib_is_not_recorded(api, record_everything):
    name = "A" * (17 * 1024)
    api.post(CUSTOMERS, {"email": "ada@example.com", "name": name}, format="json")
    recorded = Request.objects.get(path=CUSTOMERS)
    assert recorded.body == ""
    assert not recorded.raw_body


def test_request_body_over_the_upload_limit_still_gets_the_api_413(
    api, record_everything, settings
):
    name = "A" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = api.post(CUSTOMERS, {"email": "ada@example.com", "name": name}, format="json")
    assert response.status_code == 413, response.content
    recorded = Request.objects.get(path=CUSTOMERS)
    assert "A" * 1024 not in recorded.body + (recorded.raw_body or "")


def test_request_body_under_16_kib_is_recorded(api, record_everything):
    name = "A" * (8 * 1024)
    api.post(CUSTOMERS, {"email": "ada@example.com", "name": name}, format="json")
    assert name in Request.objects.get(path=CUSTOMERS).body


def test_response_body_over_16_kib_is_not_recorded(client, record_everything):
    login(client, is_staff=True)
    # The schema is far larger than 16 KiB.
    response = client.get("/api/schema/?format=json", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert len(response.content) > 16 * 1024
    assert Response.objects.get(request__path="/api/schema/").body == ""


def test_a_recorded_request_has_each_of_its_orm_queries_recorded(api, record_everything):
    api.get(CUSTOMERS)  # the first recording: silk would patch query execution here
    api.get(CUSTOMERS)

    for recorded in Request.objects.filter(path=CUSTOMERS):
        statements = SQLQuery.objects.filter(request=recorded).values_list("query", flat=True)
        assert any("orders_customer" in statement for statement in statements), statements


@pytest.fixture
def compilations(monkeypatch):
    """Counts SQLCompiler.as_sql calls: one per query when nothing compiles it twice."""
    calls = []
    compile_sql = SQLCompiler.as_sql

    def counting_as_sql(compiler, *args, **kwargs):
        calls.append(compiler.query.model)
        return compile_sql(compiler, *args, **kwargs)

    monkeypatch.setattr(SQLCompiler, "as_sql", counting_as_sql)
    return calls


def test_requests_silk_does_not_record_compile_each_query_once(api, settings, compilations):
    settings.SILK_SAMPLE_PERCENT = 100.0
    api.get(CUSTOMERS)  # recorded: silk's query patch is in place from now on
    settings.SILK_SAMPLE_PERCENT = 0.0
    compilations.clear()

    with CaptureQueriesContext(connection) as captured:
        response = api.get(CUSTOMERS)

    assert response.status_code == 200
    assert len(captured) > 0
    assert len(compilations) == len(captured)


def test_nothing_is_recorded_at_0_percent(api, settings):
    settings.SILK_SAMPLE_PERCENT = 0.0
    for _ in range(20):
        api.get(CUSTOMERS)
    assert not Request.objects.exists()


def test_tests_record_nothing_unless_they_opt_in(api):
    api.get(CUSTOMERS)
    assert not Request.objects.exists()


def test_sampling_records_about_the_given_share(rf, settings):
    settings.SILK_SAMPLE_PERCENT = 25.0
    recorded = sum(should_record(rf.get(CUSTOMERS)) for _ in range(4000))
    assert 800 < recorded < 1200


@pytest.mark.parametrize(
    "path",
    ["/health", "/ready", "/health-detailed", "/metrics", "/stats", "/static/admin/css/base.css"],
)
def test_probe_metrics_stats_and_static_paths_are_never_recorded(client, path, record_everything):
    client.get(path)
    assert not Request.objects.exists()


def test_silk_pages_are_never_recorded(client, record_everything):
    login(client, is_staff=True, ops_permission=True).get("/silk/")
    assert not Request.objects.exists()


@pytest.mark.parametrize(
    ("path", "recordable"),
    [
        ("/health", False),
        ("/health/", False),
        ("/metrics", False),
        ("/stats", False),
        ("/static/x.css", False),
        ("/silk/requests/", False),
        ("/healthy-customers/", True),
        ("/api/v1/customers/", True),
        ("/admin/", True),
    ],
)
def test_only_the_ops_paths_are_left_unrecorded(path, recordable):
    assert is_ops_path(path) is not recordable


def make_recorded_requests(count, *, start=None):
    start = start or timezone.now()
    return [
        Request.objects.create(
            path=f"/r/{number}/", method="GET", start_time=start - dt.timedelta(minutes=number)
        )
        for number in range(count)
    ]


def test_prune_silk_keeps_the_newest_requests(settings):
    settings.SILKY_MAX_RECORDED_REQUESTS = 5
    requests = make_recorded_requests(12)
    for recorded in requests:
        SQLQuery.objects.create(request=recorded, query="SELECT 1")
    call_command("prune_silk", batch_size=3, stdout=io.StringIO())
    kept = set(Request.objects.values_list("path", flat=True))
    assert kept == {f"/r/{number}/" for number in range(5)}
    assert SQLQuery.objects.count() == 5


def test_prune_silk_keep_option_overrides_the_setting():
    make_recorded_requests(4)
    call_command("prune_silk", keep=1, stdout=io.StringIO())
    assert list(Request.objects.values_list("path", flat=True)) == ["/r/0/"]


def test_prune_silk_deletes_requests_older_than_the_given_days():
    now = timezone.now()
    make_recorded_requests(2, start=now)
    make_recorded_requests(3, start=now - dt.timedelta(days=8))
    call_command("prune_silk", older_than_days=7, stdout=io.StringIO())
    assert Request.objects.count() == 2


def test_silk_garbage_collection_on_the_request_path_is_off():
    assert SilkyConfig().SILKY_MAX_RECORDED_REQUESTS_CHECK_PERCENT == 0
    assert SilkyConfig().SILKY_PYTHON_PROFILER is False


def test_silks_pages_lead_back_to_the_ops_dashboards_and_the_admin(superuser_client):
    html = superuser_client.get("/silk/").content.decode()

    assert '<a href="/admin/ops/">' in html
    assert '<a href="/admin/">' in html
