from django.db import migrations


class Migration(migrations.Migration):
    """Retention keeps first/last active day counts; run `manage.py analytics_rebuild` after it."""

    dependencies = [("analytics", "0006_referrer_channel")]

    operations = [
        migrations.RenameField("retentioncount", "on_or_after", "last_active"),
        migrations.RenameField("retentioncount", "cumulative", "first_active"),
    ]
