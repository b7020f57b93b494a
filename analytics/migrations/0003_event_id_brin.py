from django.db import migrations

# The fold finds new events by id (see analytics.services.fold): a BRIN index is a few pages
# per partition and costs the append-only ingest path next to nothing.
CREATE = "CREATE INDEX IF NOT EXISTS analytics_event_id_brin ON referrals_event USING brin (id)"
DROP = "DROP INDEX IF EXISTS analytics_event_id_brin"


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0002_cockpit_role"),
        ("referrals", "0002_event_log"),
    ]

    operations = [migrations.RunSQL(CREATE, DROP)]
