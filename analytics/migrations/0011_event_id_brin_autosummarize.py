from django.db import migrations

# The fold scans the log above an id with this BRIN index. A block range is summarized only
# by VACUUM or, with autosummarize, as soon as the next range starts filling; until then the
# index returns it as a match, so a partition nobody had vacuumed yet was read whole by every
# fold. Storage options cannot be altered on a partitioned index: it is made again, with
# autosummarize (new partitions copy it). BRIN builds are quick (seconds for 20M events).
CREATE = "CREATE INDEX analytics_event_id_brin ON referrals_event USING brin (id) WITH (autosummarize = on)"
CREATE_OLD = "CREATE INDEX analytics_event_id_brin ON referrals_event USING brin (id)"
DROP = "DROP INDEX IF EXISTS analytics_event_id_brin"


class Migration(migrations.Migration):
    dependencies = [("analytics", "0010_order_stat")]

    operations = [migrations.RunSQL([DROP, CREATE], [DROP, CREATE_OLD])]
