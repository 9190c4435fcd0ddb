"""The query findings admin: staff only, read-only but for the status, actions, silk link,
filters, sorting and a constant number of queries."""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.profiling import findings
from apps.profiling.models import QueryFinding

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/profiling/queryfinding/"
SILK_REQUEST_ID = "5b0e7c1e-3f57-4d0b-9a51-0c2d6f1e9a11"


def add_findings(count, start=0):
    """Findings whose counts, times and repeats do not follow their age or each other."""
    now = timezone.now()
    kinds = ["n_plus_one", "duplicate", "slow"]
    rows = []
    for number in range(start, start + count):
        kind = kinds[number % 3]
        callsite = f"apps/orders/api/views.py:{100 + number}"
        source = f"/api/v1/route-{number % 2}/"
        rows.append(
            QueryFinding(
                key=findings.finding_key(kind, f"{number:016x}", callsite, source),
                kind=kind,
                fingerprint=f"{number:016x}",
                sample_sql="SELECT %s FROM orders_customer WHERE id = %s",
                callsite=callsite,
                source=source,
                occurrences=(number * 7) % 11 + 1,
                max_repeats=(number * 5) % 13 + 2,
                total_ms=float((number * 3) % 17) + 0.5,
                max_ms=1.5,
                first_seen=now - dt.timedelta(hours=number + 1),
                last_seen=now - dt.timedelta(minutes=(number * 37) % 50),
            )
        )
    QueryFinding.objects.bulk_create(rows)


def select(client, action, rows):
    return client.post(CHANGELIST, {"action": action, "_selected_action": [row.pk for row in rows]})


# --- Access --------------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get(CHANGELIST)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_signed_in_users_who_are_not_staff_are_sent_to_the_login_page(client):
    user = get_user_model().objects.create_user("someone", "someone@example.com", "irrelevant")
    client.force_login(user)

    response = client.get(CHANGELIST)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_findings_cannot_be_added_in_the_admin(superuser_client):
    assert superuser_client.get(f"{CHANGELIST}add/").status_code == 403


def test_only_the_status_is_editable_and_changing_it_is_timestamped(superuser_client):
    add_findings(1)
    finding = QueryFinding.objects.get()
    page = superuser_client.get(f"{CHANGELIST}{finding.pk}/change/")
    form = page.context["adminform"].form
    assert list(form.fields) == ["status"]

    response = superuser_client.post(
        f"{CHANGELIST}{finding.pk}/change/", {"status": QueryFinding.Status.IGNORED}
    )

    assert response.status_code == 302
    finding.refresh_from_db()
    assert finding.status == QueryFinding.Status.IGNORED
    assert timezone.now() - finding.status_changed_at < dt.timedelta(minutes=1)


# --- Actions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "status"),
    [
        ("acknowledge", "acknowledged"),
        ("ignore", "ignored"),
        ("mark_fixed", "fixed"),
    ],
)
def test_an_action_sets_the_status_of_the_selected_findings(superuser_client, action, status):
    add_findings(3)
    selected = list(QueryFinding.objects.order_by("pk")[:2])

    response = select(superuser_client, action, selected)

    assert response.status_code == 302
    changed = QueryFinding.objects.filter(status=status)
    assert sorted(changed.values_list("pk", flat=True)) == [row.pk for row in selected]
    assert all(row.status_changed_at is not None for row in changed)
    assert QueryFinding.objects.filter(status="new", status_changed_at__isnull=True).count() == 1


def test_reopen_makes_findings_new_again(superuser_client):
    add_findings(2)
    QueryFinding.objects.update(status=QueryFinding.Status.IGNORED)

    select(superuser_client, "reopen", QueryFinding.objects.all())

    assert set(QueryFinding.objects.values_list("status", flat=True)) == {"new"}


# --- Silk link -----------------------------------------------------------------------------------


def test_a_finding_recorded_by_silk_links_to_silks_request_page(superuser_client):
    add_findings(2)
    QueryFinding.objects.filter(pk=QueryFinding.objects.order_by("pk")[0].pk).update(
        silk_request_id=SILK_REQUEST_ID
    )

    page = superuser_client.get(CHANGELIST).content.decode()

    assert f'href="/silk/request/{SILK_REQUEST_ID}/"' in page
    assert page.count('href="/silk/request/') == 1


# --- Listing -------------------------------------------------------------------------------------


def test_the_changelist_runs_the_same_queries_for_5_or_50_findings(superuser_client):
    def queries():
        superuser_client.get(CHANGELIST)  # warm the session and content types
        with CaptureQueriesContext(connection) as captured:
            assert superuser_client.get(CHANGELIST).status_code == 200
        return len(captured)

    add_findings(5)
    with_5 = queries()
    add_findings(45, start=5)

    assert queries() == with_5


@pytest.mark.parametrize(
    ("column", "field"),
    [("4", "occurrences"), ("5", "max_repeats"), ("6", "total_ms"), ("8", "last_seen")],
)
def test_the_changelist_sorts_by_the_heaviest_first(superuser_client, column, field):
    add_findings(12)

    page = superuser_client.get(CHANGELIST, {"o": f"-{column}"})

    values = [getattr(row, field) for row in page.context["cl"].result_list]
    assert values == sorted(values, reverse=True)
    assert len(set(values)) > 1


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({"kind__exact": "slow"}, 4),
        ({"status__exact": "new"}, 12),
        ({"source": "/api/v1/route-1/"}, 6),
        ({"q": "views.py:105"}, 1),
        ({"q": f"{7:016x}"}, 1),
        ({"q": "route-0"}, 6),
    ],
)
def test_the_changelist_filters_and_searches(superuser_client, parameters, expected):
    add_findings(12)

    page = superuser_client.get(CHANGELIST, parameters)

    assert page.status_code == 200
    assert page.context["cl"].result_count == expected
