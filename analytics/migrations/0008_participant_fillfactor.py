from django.db import migrations

# Every fold rewrites the rows it touches: free space on each page lets PostgreSQL update
# them in place (HOT) when no indexed column changed.
SQL = "ALTER TABLE analytics_participant SET (fillfactor = 80)"
UNDO = "ALTER TABLE analytics_participant RESET (fillfactor)"


class Migration(migrations.Migration):
    dependencies = [("analytics", "0007_retention_first_last")]

    operations = [migrations.RunSQL(SQL, UNDO)]
