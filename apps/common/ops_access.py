"""Who may see the ops side: active staff holding the `observability.view_ops` permission.

The ops dashboards, /stats, /health-detailed, the session path to /metrics and silk all ask
`may_view_ops`, so one rule decides. Being staff is not enough: silk shows every tenant's request
bodies and SQL. Superusers hold every permission; the "Ops" group (observability migration 0004)
is how others get it.
"""

OPS_PERMISSION = "observability.view_ops"


def may_view_ops(user):
    return bool(
        user
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm(OPS_PERMISSION)
    )
