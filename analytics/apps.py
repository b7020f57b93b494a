from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self):
        from django.db.models.signals import pre_delete

        from analytics.cockpit.admin import register
        from campaigns.models import Campaign

        from .signals import campaign_derived_rows_delete

        # The cockpit's pages under each campaign, and real progress on the campaign list.
        # (The API token admin is analytics/admin.py, which the admin's autodiscovery imports.)
        register()
        # A deleted campaign's derived rows go with it (they have no foreign key to cascade).
        pre_delete.connect(
            campaign_derived_rows_delete, sender=Campaign, dispatch_uid="analytics-campaign-derived-rows"
        )
