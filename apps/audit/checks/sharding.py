"""Sharding readiness: could the tenant tables be distributed by organization_id (Citus)?

Citus distributes a table by one column when its primary key and every unique constraint include
that column, and a foreign key between two distributed tables includes it on both sides; tables
referenced by every tenant (organizations) become reference tables.
"""

from django.apps import apps
from django.conf import settings
from django.db import models
from django.db.models import Count

from apps.audit.report import INFO, WARNING, Finding

DOMAIN_APPS = ("tenants", "orders")
TENANT_MODEL = ("tenants", "organization")
DISTRIBUTION_COLUMN = "organization_id"
TOP_ORGANIZATIONS = 3


def tenant_models():
    tenant = apps.get_model(*TENANT_MODEL)
    return [
        model
        for label in DOMAIN_APPS
        for model in apps.get_app_config(label).get_models()
        if model is not tenant
    ]


def _columns(model, names):
    return [model._meta.get_field(name).column for name in names]


def _carries_distribution_column(model):
    return any(field.column == DISTRIBUTION_COLUMN for field in model._meta.concrete_fields)


def citus_blockers(model):
    """What would stop `create_distributed_table(table, 'organization_id')`, as sentences."""
    meta = model._meta
    blockers = []
    if meta.pk.column != DISTRIBUTION_COLUMN:
        blockers.append(f"primary key ({meta.pk.column}) lacks {DISTRIBUTION_COLUMN}")
    for field in meta.concrete_fields:
        if field.unique and not field.primary_key and field.column != DISTRIBUTION_COLUMN:
            blockers.append(f"unique {field.column} lacks {DISTRIBUTION_COLUMN}")
    for constraint in meta.constraints:
        if isinstance(constraint, models.UniqueConstraint):
            columns = _columns(model, constraint.fields) if constraint.fields else []
            names = [*columns, *(str(expression) for expression in constraint.expressions)]
            includes = DISTRIBUTION_COLUMN in columns or any(
                "organization" in str(expression) for expression in constraint.expressions
            )
            if not includes:
                blockers.append(f"unique {constraint.name} ({', '.join(names)}) lacks it")
    tenants = set(tenant_models())
    for field in meta.concrete_fields:
        if field.is_relation and field.related_model in tenants:
            target = field.related_model._meta
            if target.pk.column != DISTRIBUTION_COLUMN:
                blockers.append(
                    f"foreign key {field.column} → {target.db_table}({field.target_field.column}) "
                    f"does not include {DISTRIBUTION_COLUMN}"
                )
    return blockers


def _largest_shares(model):
    rows = (
        model._default_manager.order_by()
        .values(DISTRIBUTION_COLUMN)
        .annotate(rows=Count("pk"))
        .order_by("-rows")
    )
    counts = [row["rows"] for row in rows]
    total = sum(counts)
    top = [
        {"organization_id": row[DISTRIBUTION_COLUMN], "rows": row["rows"]}
        for row in rows[:TOP_ORGANIZATIONS]
    ]
    return total, len(counts), top


def sharding_readiness(scope):
    findings = []
    models_ = tenant_models()
    missing = [model._meta.db_table for model in models_ if not _carries_distribution_column(model)]
    carrying = [model for model in models_ if _carries_distribution_column(model)]
    if missing:
        findings.append(
            Finding(
                "sharding:tenant-column",
                WARNING,
                "Tenant tables without organization_id",
                f"{', '.join(missing)} carry no {DISTRIBUTION_COLUMN}: their rows cannot be "
                "placed with their organization's.",
                f"Add {DISTRIBUTION_COLUMN} (denormalised from the parent row) to them.",
                {"tables": missing},
            )
        )
    else:
        findings.append(
            Finding(
                "sharding:tenant-column",
                INFO,
                "Every tenant table carries organization_id",
                f"{len(carrying)} tenant tables: "
                f"{', '.join(model._meta.db_table for model in carrying)}.",
            )
        )
    share_limit = settings.SCALING_AUDIT_TENANT_SHARE_PERCENT
    large = settings.SCALING_AUDIT_LARGE_TABLE_ROWS
    shares = {}
    for model in carrying:
        total, organizations, top = _largest_shares(model)
        if not total:
            continue
        for entry in top:
            entry["percent"] = round(100 * entry["rows"] / total, 1)
        shares[model._meta.db_table] = {
            "rows": total,
            "organizations": organizations,
            "largest": top,
        }
    if shares:
        table, figures = max(shares.items(), key=lambda item: item[1]["rows"])
        biggest = figures["largest"][0]
        skewed = (
            figures["organizations"] > 1
            and biggest["percent"] > share_limit
            and figures["rows"] >= large
        )
        listing = ", ".join(
            f"organization {entry['organization_id']} {entry['percent']:g} %"
            for entry in figures["largest"]
        )
        findings.append(
            Finding(
                "sharding:tenant-share",
                WARNING if skewed else INFO,
                "The largest organizations' share of rows",
                f"{table}, the largest tenant table: {figures['rows']} rows over "
                f"{figures['organizations']} organization(s); {listing}.",
                f"One organization holds more than {share_limit:g} % "
                "(SCALING_AUDIT_TENANT_SHARE_PERCENT): sharding by organization would leave "
                "one node with most of the load; isolate it on its own node."
                if skewed
                else "",
                {"tables": shares},
            )
        )
    blocked = {model._meta.db_table: citus_blockers(model) for model in carrying}
    blocked = {table: reasons for table, reasons in blocked.items() if reasons}
    findings.append(
        Finding(
            "sharding:citus",
            INFO,
            "Distribution by organization_id (Citus)",
            (
                f"{len(blocked)} of {len(carrying)} tenant tables could not be distributed as "
                "they are: "
                + "; ".join(f"{table}: {', '.join(reasons)}" for table, reasons in blocked.items())
                + "."
            )
            if blocked
            else f"All {len(carrying)} tenant tables could be distributed by organization_id.",
            "Before sharding: make primary keys (organization_id, id), lead every unique "
            "constraint with organization_id, and include it in the foreign keys between "
            "tenant tables; organizations becomes a reference table."
            if blocked
            else "",
            {"blockers": blocked},
        )
    )
    return findings
