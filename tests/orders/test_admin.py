"""Admin pages of the domain: constant queries whatever the number of rows, and the actions."""

import pytest
from django.apps import apps
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.orders import services
from apps.orders.models import IdempotencyRecord, Order, Product
from apps.tenants.models import OrganizationAPIKey
from tests.orders.factories import make_api_key, make_customer, make_organization, make_product

pytestmark = [pytest.mark.django_db, pytest.mark.no_nplusone]


def queries(client, url):
    client.get(url)  # warm caches (content types, session) so both counts compare like for like
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


def add_orders(count):
    organization = make_organization()
    customer = make_customer(organization)
    product = make_product(organization, stock=10_000)
    for _ in range(count):
        services.create_order(organization, customer, [{"product": product, "quantity": 1}])


def add_rows(model_name, count):
    if model_name in ("order", "idempotencyrecord", "ordernumbersequence"):
        for _ in range(count):
            add_orders(1)
        if model_name == "idempotencyrecord":
            for order in Order.objects.filter(number="ORD-000001").exclude(
                organization__idempotencyrecord__isnull=False
            ):
                IdempotencyRecord.objects.create(
                    organization_id=order.organization_id,
                    key=f"key-{order.pk}",
                    request_hash="x",
                    status_code=201,
                    response_body={},
                )
        return
    makers = {
        "customer": make_customer,
        "product": make_product,
        "organization": lambda organization: None,
        "organizationapikey": make_api_key,
    }
    for _ in range(count):
        makers[model_name](make_organization())


CHANGELISTS = [
    ("orders", "customer"),
    ("orders", "product"),
    ("orders", "order"),
    ("orders", "idempotencyrecord"),
    ("orders", "ordernumbersequence"),
    ("tenants", "organization"),
    ("tenants", "organizationapikey"),
]


@pytest.mark.allow_nplusone(reason="creates 50 orders through the service in its body")
@pytest.mark.parametrize(("app", "model_name"), CHANGELISTS)
def test_changelist_queries_do_not_grow_with_rows(admin_client, app, model_name):
    url = reverse(f"admin:{app}_{model_name}_changelist")
    add_rows(model_name, 5)
    with_5 = queries(admin_client, url)
    add_rows(model_name, 45)
    assert queries(admin_client, url) == with_5


@pytest.mark.parametrize(("app", "model_name"), CHANGELISTS)
def test_changelist_search_works(admin_client, app, model_name):
    add_rows(model_name, 2)
    url = reverse(f"admin:{app}_{model_name}_changelist")
    assert admin_client.get(url, {"q": "1"}).status_code == 200


def test_order_change_form_queries_do_not_grow_with_lines(admin_client):
    organization = make_organization()
    customer = make_customer(organization)
    products = [make_product(organization) for _ in range(50)]

    def order_with(count):
        order = services.create_order(
            organization,
            customer,
            [{"product": product, "quantity": 1} for product in products[:count]],
        )
        return reverse("admin:orders_order_change", args=[order.pk])

    assert queries(admin_client, order_with(5)) == queries(admin_client, order_with(50))


@pytest.mark.parametrize("model_name", ["customer", "product"])
def test_catalog_change_forms_render_with_constant_queries(admin_client, model_name):
    organizations = [make_organization() for _ in range(3)]
    maker = make_customer if model_name == "customer" else make_product
    first = maker(organizations[0])
    url = reverse(f"admin:orders_{model_name}_change", args=[first.pk])
    before = queries(admin_client, url)
    for _ in range(45):
        maker(make_organization())
    assert queries(admin_client, url) == before


def test_api_key_change_form_renders(admin_client, organization):
    api_key, _ = make_api_key(organization)
    url = reverse("admin:tenants_organizationapikey_change", args=[api_key.pk])
    assert admin_client.get(url).status_code == 200


def test_order_changelist_filters_by_status_and_date(admin_client):
    add_orders(3)
    url = reverse("admin:orders_order_changelist")
    assert admin_client.get(url, {"status__exact": "pending"}).status_code == 200
    year = Order.objects.first().created_at.year
    assert admin_client.get(url, {"created_at__year": year}).status_code == 200


def test_orders_are_not_added_in_the_admin(admin_client):
    assert admin_client.get(reverse("admin:orders_order_add")).status_code == 403


def test_orders_cannot_be_deleted_not_even_by_a_superuser(admin_client, two_orders):
    order = two_orders[0]

    assert (
        admin_client.get(reverse("admin:orders_order_delete", args=[order.pk])).status_code == 403
    )
    changelist = admin_client.get(reverse("admin:orders_order_changelist"))
    assert "delete_selected" not in changelist.content.decode()
    assert Order.objects.filter(pk=order.pk).exists()


@pytest.mark.parametrize("model_name", ["idempotencyrecord", "ordernumbersequence"])
def test_internal_tables_are_read_only(admin_client, model_name):
    add_rows(model_name, 1)
    row = apps.get_model("orders", model_name).objects.first()

    delete = admin_client.get(reverse(f"admin:orders_{model_name}_delete", args=[row.pk]))
    change = admin_client.get(reverse(f"admin:orders_{model_name}_change", args=[row.pk]))

    assert delete.status_code == 403
    assert change.status_code == 200
    assert 'name="_save"' not in change.content.decode()


def test_the_admin_writes_times_in_24_hours_with_seconds(admin_client, two_orders):
    order = two_orders[0]

    page = admin_client.get(reverse("admin:orders_order_change", args=[order.pk]))

    assert timezone.localtime(order.created_at).strftime("%Y-%m-%d %H:%M:%S") in (
        page.content.decode()
    )


def run_action(admin_client, action, orders):
    return admin_client.post(
        reverse("admin:orders_order_changelist"),
        {"action": action, "_selected_action": [order.pk for order in orders]},
        follow=True,
    )


@pytest.fixture
def two_orders(organization, customer, product):
    return [
        services.create_order(organization, customer, [{"product": product, "quantity": 2}])
        for _ in range(2)
    ]


def test_pay_action_pays_through_the_service_and_reports_failures(admin_client, two_orders):
    services.pay(two_orders[0])
    response = run_action(admin_client, "pay_orders", two_orders)
    messages = [str(message) for message in get_messages(response.wsgi_request)]
    assert Order.objects.get(pk=two_orders[1].pk).status == "paid"
    assert any("1 order(s) paid" in message for message in messages)
    assert any(two_orders[0].number in message and "paid" in message for message in messages)


def test_ship_action_ships_paid_orders(admin_client, two_orders):
    for order in two_orders:
        services.pay(order)
    run_action(admin_client, "ship_orders", two_orders)
    assert set(Order.objects.values_list("status", flat=True)) == {"shipped"}


def test_cancel_action_restocks(admin_client, two_orders, product):
    run_action(admin_client, "cancel_orders", two_orders)
    assert set(Order.objects.values_list("status", flat=True)) == {"cancelled"}
    assert Product.objects.get(pk=product.pk).stock == 100


def test_api_key_created_in_the_admin_is_shown_once_and_stored_hashed(admin_client, organization):
    response = admin_client.post(
        reverse("admin:tenants_organizationapikey_add"),
        {"name": "shop", "organization": organization.pk},
        follow=True,
    )
    api_key = OrganizationAPIKey.objects.get(name="shop")
    messages = [str(message) for message in get_messages(response.wsgi_request)]
    shown = [message for message in messages if "The API key for shop is: " in message]
    assert len(shown) == 1
    full_key = shown[0].split("is: ")[1].split(". ")[0]
    assert full_key.startswith(api_key.prefix + ".")
    assert api_key.is_valid(full_key)
    page = admin_client.get(reverse("admin:tenants_organizationapikey_change", args=[api_key.pk]))
    assert full_key.encode() not in page.content


def test_the_librarys_own_key_model_is_not_in_the_admin(admin_client):
    response = admin_client.get(reverse("admin:index"))
    assert b"rest_framework_api_key" not in response.content
