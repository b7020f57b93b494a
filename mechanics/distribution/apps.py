from django.apps import AppConfig


class DistributionConfig(AppConfig):
    name = "mechanics.distribution"
    label = "distribution"
    verbose_name = "Distribution"

    def ready(self) -> None:
        from campaigns import services as campaign_services
        from referrals.services import compliance, reward_triggers

        from .compliance import launch_check, rules_text_part
        from .services import commission_levels, distribution_plan_clone, sweep_orders_of_bound_buyers

        for registry, hook in (
            (campaign_services.LAUNCH_CHECKS, launch_check),
            (compliance.RULES_TEXT_PARTS, rules_text_part),
            (reward_triggers.COMMISSION_BENEFICIARIES, commission_levels),
            (reward_triggers.COMMISSION_SWEEP, sweep_orders_of_bound_buyers),
            (campaign_services.CLONE_HOOKS, distribution_plan_clone),
        ):
            if hook not in registry:
                registry.append(hook)
