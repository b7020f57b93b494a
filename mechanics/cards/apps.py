from django.apps import AppConfig


class CardsConfig(AppConfig):
    name = "mechanics.cards"
    label = "cards"
    verbose_name = "Greeting cards and image share"

    def ready(self) -> None:
        from campaigns import services as campaign_services
        from referrals.services import compliance

        from .clone import card_setup_clone
        from .compliance import launch_findings, rules_part

        if launch_findings not in campaign_services.LAUNCH_CHECKS:
            campaign_services.LAUNCH_CHECKS.append(launch_findings)
        if rules_part not in compliance.RULES_TEXT_PARTS:
            compliance.RULES_TEXT_PARTS.append(rules_part)
        if card_setup_clone not in campaign_services.CLONE_HOOKS:
            campaign_services.CLONE_HOOKS.append(card_setup_clone)
