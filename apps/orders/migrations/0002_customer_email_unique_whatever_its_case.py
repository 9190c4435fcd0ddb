"""Customers' emails unique per organization whatever their case.

Existing rows that differ only in case would make the new unique index fail with a bare
IntegrityError; the migration looks for them first and stops with a list to resolve instead.
"""

from django.core.management.base import CommandError
from django.db import migrations, models
from django.db.models import Count
from django.db.models.functions import Lower

# Clashes named in the error; the query in the message finds every one.
LISTED_CLASHES = 50
FIND_CLASHES_SQL = (
    "SELECT organization_id, LOWER(email), COUNT(*) FROM orders_customer "
    "GROUP BY organization_id, LOWER(email) HAVING COUNT(*) > 1"
)


def refuse_emails_differing_only_in_case(apps, schema_editor):
    customers = apps.get_model("orders", "Customer").objects.using(schema_editor.connection.alias)
    clashes = list(
        customers.values("organization_id", folded=Lower("email"))
        .annotate(count=Count("id"))
        .filter(count__gt=1)
        .order_by("organization_id", "folded")
    )
    if not clashes:
        return
    lines = []
    for clash in clashes[:LISTED_CLASHES]:
        rows = customers.filter(organization_id=clash["organization_id"]).annotate(
            folded=Lower("email")
        )
        emails = ", ".join(
            f"{email} (customer {pk})"
            for pk, email in rows.filter(folded=clash["folded"])
            .order_by("pk")
            .values_list("pk", "email")
        )
        lines.append(f"  organization {clash['organization_id']}: {emails}")
    if len(clashes) > LISTED_CLASHES:
        lines.append(f"  and {len(clashes) - LISTED_CLASHES} more; all of them: {FIND_CLASHES_SQL}")
    raise CommandError(
        "Customer emails become unique per organization whatever their case, but these "
        "customers differ only in the case of their email. Merge or correct them, then migrate "
        "again:\n" + "\n".join(lines)
    )


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(refuse_emails_differing_only_in_case, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name="customer",
            name="orders_customer_email_unique_per_org",
        ),
        migrations.AddConstraint(
            model_name="customer",
            constraint=models.UniqueConstraint(
                models.F("organization"),
                Lower("email"),
                name="orders_customer_email_ci_unique_per_org",
                violation_error_message="A customer with this email already exists.",
            ),
        ),
    ]
