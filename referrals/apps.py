from django.apps import AppConfig


class ReferralsConfig(AppConfig):
    name = "referrals"
    verbose_name = "Referrals and rewards"

    def ready(self) -> None:
        from referrals.api import schema  # noqa: F401 - registers the OpenAPI auth schemes
