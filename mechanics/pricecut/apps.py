from django.apps import AppConfig


class PricecutConfig(AppConfig):
    name = "mechanics.pricecut"
    label = "pricecut"
    verbose_name = "Price cut"

    def ready(self) -> None:
        from campaigns import services as campaign_services
        from referrals.services import compliance

        from .clone import cut_offers_clone
        from .compliance import launch_check, rules_part

        if launch_check not in campaign_services.LAUNCH_CHECKS:
            campaign_services.LAUNCH_CHECKS.append(launch_check)
        if rules_part not in compliance.RULES_TEXT_PARTS:
            compliance.RULES_TEXT_PARTS.append(rules_part)
        if cut_offers_clone not in campaign_services.CLONE_HOOKS:
            campaign_services.CLONE_HOOKS.append(cut_offers_clone)
