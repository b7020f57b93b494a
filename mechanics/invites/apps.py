from django.apps import AppConfig


class InvitesConfig(AppConfig):
    name = "mechanics.invites"
    label = "invites"
    verbose_name = "Invite-N tasks"

    def ready(self) -> None:
        from campaigns import services as campaign_services
        from referrals.services import compliance
        from referrals.services.clone import reward_rules_clone

        from .compliance import launch_findings, rules_part
        from .services import invite_task_clone

        if launch_findings not in campaign_services.LAUNCH_CHECKS:
            campaign_services.LAUNCH_CHECKS.append(launch_findings)
        if rules_part not in compliance.RULES_TEXT_PARTS:
            compliance.RULES_TEXT_PARTS.append(rules_part)
        # The task's tiers are the milestone reward rules: referrals' hook must have copied
        # them when the task's runs (it registers first; this holds whatever the app order).
        for hook in (reward_rules_clone, invite_task_clone):
            if hook not in campaign_services.CLONE_HOOKS:
                campaign_services.CLONE_HOOKS.append(hook)
