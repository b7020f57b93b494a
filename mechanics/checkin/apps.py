from django.apps import AppConfig


class CheckinConfig(AppConfig):
    name = "mechanics.checkin"
    label = "checkin"
    verbose_name = "Daily check-in"
