"""observability.view_ops, the permission of the ops side, and the "Ops" group that holds it with
the view permissions of the telemetry models the ops pages link to."""

from django.contrib.auth.management import create_permissions
from django.contrib.contenttypes.management import create_contenttypes
from django.db import migrations

OPS_GROUP = "Ops"
OPS_CODENAMES = (
    "view_ops",
    "view_requestminute",
    "view_requestquarterhour",
    "view_slowrequest",
    "view_errorgroup",
)


def create_ops_group(apps, schema_editor):
    using = schema_editor.connection.alias
    # Django creates permissions after the last migration (post_migrate); on a fresh database
    # they do not exist yet here, so this app's are created now, the way that signal does.
    app_config = apps.get_app_config("observability")
    app_config.models_module = getattr(app_config, "models_module", None) or True
    create_contenttypes(app_config, verbosity=0, using=using, apps=apps)
    create_permissions(app_config, verbosity=0, using=using, apps=apps)

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.using(using).get_or_create(name=OPS_GROUP)
    group.permissions.add(
        *Permission.objects.using(using).filter(
            content_type__app_label="observability", codename__in=OPS_CODENAMES
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("observability", "0003_fill_request_quarter_hours"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="requestminute",
            options={
                "ordering": ["-minute", "route", "method"],
                "permissions": [
                    (
                        "view_ops",
                        "Can view the ops pages, /stats, /metrics, /health-detailed and silk",
                    )
                ],
            },
        ),
        # Going back keeps the group: its members were chosen by people, not by this migration.
        migrations.RunPython(create_ops_group, migrations.RunPython.noop),
    ]
