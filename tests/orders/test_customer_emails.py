"""A customer's email is unique per organization whatever its case, in the database, the API
and the migration that brought the rule in."""

import pytest
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from apps.orders.models import Customer
from apps.tenants.models import Organization
from tests.orders.factories import make_customer

BEFORE_CASE_INSENSITIVE_EMAILS = [("orders", "0001_initial")]
CASE_INSENSITIVE_EMAILS = [("orders", "0002_customer_email_unique_whatever_its_case")]


@pytest.mark.django_db
def test_the_database_refuses_an_email_differing_only_in_case(organization):
    make_customer(organization, email="customer1@example.com")

    with pytest.raises(IntegrityError), transaction.atomic():
        make_customer(organization, email="CUSTOMER1@example.com")


@pytest.mark.django_db
def test_another_organization_may_have_the_same_email_in_another_case(
    organization, other_organization
):
    make_customer(organization, email="customer1@example.com")

    make_customer(other_organization, email="CUSTOMER1@example.com")

    assert Customer.objects.filter(email__iexact="customer1@example.com").count() == 2


@pytest.mark.django_db
def test_the_api_refuses_an_email_that_exists_in_another_case(api, organization):
    make_customer(organization, email="customer1@example.com")

    response = api.post(
        "/api/v1/customers/", {"email": "CUSTOMER1@example.com", "name": "Again"}, format="json"
    )

    assert response.status_code == 400, response.content
    assert set(response.json()["error"]["fields"]) == {"email"}


@pytest.mark.django_db
def test_renaming_a_customer_keeps_its_own_email_in_another_case(api, organization):
    customer = make_customer(organization, email="customer1@example.com")

    response = api.patch(
        f"/api/v1/customers/{customer.pk}/", {"email": "Customer1@example.com"}, format="json"
    )

    assert response.status_code == 200, response.content


@pytest.mark.django_db
def test_the_email_filter_finds_the_one_customer_whatever_the_case(api, organization):
    customer = make_customer(organization, email="customer1@example.com")

    response = api.get("/api/v1/customers/", {"email": "CUSTOMER1@EXAMPLE.COM"})

    assert [row["id"] for row in response.json()["results"]] == [customer.pk]


@pytest.fixture
def migrated_before_case_insensitive_emails(transactional_db):
    """The database as it was before the rule; migrated forward again afterwards."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_CASE_INSENSITIVE_EMAILS)
    yield executor.loader.project_state(BEFORE_CASE_INSENSITIVE_EMAILS).apps
    Customer.objects.all().delete()
    MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())


def test_the_migration_lists_clashing_emails_instead_of_failing_blindly(
    migrated_before_case_insensitive_emails,
):
    historical = migrated_before_case_insensitive_emails
    organization = historical.get_model("tenants", "Organization").objects.create(
        name="Clashing", slug="clashing"
    )
    customers = historical.get_model("orders", "Customer").objects
    for email in ("customer1@example.com", "CUSTOMER1@example.com", "other@example.com"):
        customers.create(organization=organization, email=email, name=email)

    with pytest.raises(CommandError) as refusal:
        MigrationExecutor(connection).migrate(CASE_INSENSITIVE_EMAILS)

    message = str(refusal.value)
    assert f"organization {organization.pk}:" in message
    assert "customer1@example.com" in message
    assert "CUSTOMER1@example.com" in message
    assert "other@example.com" not in message


def test_the_migration_applies_when_no_emails_clash(migrated_before_case_insensitive_emails):
    historical = migrated_before_case_insensitive_emails
    organization = historical.get_model("tenants", "Organization").objects.create(
        name="Distinct", slug="distinct"
    )
    customers = historical.get_model("orders", "Customer").objects
    customers.create(organization=organization, email="customer1@example.com", name="One")

    MigrationExecutor(connection).migrate(CASE_INSENSITIVE_EMAILS)

    with pytest.raises(IntegrityError), transaction.atomic():
        make_customer(Organization.objects.get(pk=organization.pk), email="Customer1@Example.com")
