"""Fill the 15-minute rollup from the minutes stored before it existed, so that the long windows of
the ops dashboards show no gap after the deployment that adds it."""

from django.db import migrations


def fill_quarter_hours(apps, schema_editor):
    from apps.observability.telemetry.rollup import backfill_quarter_hours

    backfill_quarter_hours(
        apps.get_model("observability", "RequestMinute"),
        apps.get_model("observability", "RequestQuarterHour"),
        using=schema_editor.connection.alias,
    )


class Migration(migrations.Migration):
    dependencies = [("observability", "0002_request_quarter_hour")]

    operations = [
        # Going back drops the table (0002): nothing to undo here.
        migrations.RunPython(fill_quarter_hours, migrations.RunPython.noop, elidable=True),
    ]
