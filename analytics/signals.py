"""Analytics' part of deleting a campaign: its derived rows go with it.

The derived tables hold `campaign_id` without a foreign key (the fold writes them in bulk,
see `analytics.models`), so nothing in the database removes them when the campaign goes.
Connected in `AnalyticsConfig.ready()`; campaigns never imports analytics."""

from django.db import connections

from .models import CampaignCounter
from .services.fold import ADVISORY_NS, DERIVED_TABLES


def campaign_derived_rows_delete(sender, instance, using, **kwargs) -> None:
    """pre_delete of a Campaign: wait for (and block until commit) the campaign's fold writer,
    then delete every derived row of the campaign, in the deleting transaction.

    The lock is taken in pre_delete, before this transaction deletes (and so locks) the
    campaign row: a running fold writes rows that reference that row and would wait for it
    while we waited for the fold's lock (a deadlock). After we commit, a waiting fold finds
    no campaign and writes nothing; if the deletion rolls back, so do these deletes."""
    with connections[using].cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ADVISORY_NS, instance.pk])
        for table in DERIVED_TABLES:
            cur.execute(f"DELETE FROM {table} WHERE campaign_id = %s", [instance.pk])  # noqa: S608
    # The counter has a foreign key and would go by cascade anyway; deleted here with the rest.
    CampaignCounter.objects.using(using).filter(campaign_id=instance.pk).delete()
