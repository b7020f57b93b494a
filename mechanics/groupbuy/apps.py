from django.apps import AppConfig


class GroupbuyConfig(AppConfig):
    name = "mechanics.groupbuy"
    label = "groupbuy"
    verbose_name = "Group buying"

    def ready(self) -> None:
        from campaigns import services as campaign_services
        from referrals.services import compliance

        from .clone import group_deals_clone
        from .compliance import launch_check, rules_part

        if launch_check not in campaign_services.LAUNCH_CHECKS:
            campaign_services.LAUNCH_CHECKS.append(launch_check)
        if rules_part not in compliance.RULES_TEXT_PARTS:
            compliance.RULES_TEXT_PARTS.append(rules_part)
        if group_deals_clone not in campaign_services.CLONE_HOOKS:
            campaign_services.CLONE_HOOKS.append(group_deals_clone)
