from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self):
        # The cockpit's pages under each campaign, and real progress on the campaign list.
        from analytics.cockpit.admin import register

        register()
