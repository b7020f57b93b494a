from django.core.management.base import BaseCommand

from analytics.services import analytics_rebuild, derived_tables_vacuum
from campaigns.models import Campaign


class Command(BaseCommand):
    help = "Rebuild the analytics tables from the raw event log (all campaigns, or --campaign ID/slug)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--campaign", action="append", default=[], help="Campaign id or slug; repeatable."
        )

    def handle(self, *args, campaign, **options):
        campaigns = Campaign.objects.all().order_by("pk")
        if campaign:
            ids = [int(c) for c in campaign if c.isdigit()]
            slugs = [c for c in campaign if not c.isdigit()]
            campaigns = campaigns.filter(pk__in=ids) | campaigns.filter(slug__in=slugs)
        for c in campaigns:
            result = analytics_rebuild(campaign_id=c.pk)
            self.stdout.write(
                f"{c.slug}: {result['events']} events, {result['participants']} participants "
                f"in {result['seconds']} s"
            )
        derived_tables_vacuum()  # the rebuilt campaigns' old rows are dead: clean them up now
        self.stdout.write("derived tables vacuumed and analyzed")
