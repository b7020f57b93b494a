from django.apps import AppConfig


class DistributionConfig(AppConfig):
    name = "mechanics.distribution"
    label = "distribution"
    verbose_name = "Distribution"
