from django.apps import AppConfig


class CheckinConfig(AppConfig):
    name = "mechanics.checkin"
    label = "checkin"
    verbose_name = "Daily check-in"

    def ready(self) -> None:
        from campaigns import services as campaign_services
        from referrals.services import compliance

        from .compliance import launch_check, rules_text_part
        from .services import checkin_plan_clone

        for registry, hook in (
            (campaign_services.LAUNCH_CHECKS, launch_check),
            (compliance.RULES_TEXT_PARTS, rules_text_part),
            (campaign_services.CLONE_HOOKS, checkin_plan_clone),
        ):
            if hook not in registry:
                registry.append(hook)
