from django.apps import AppConfig


class InvitesConfig(AppConfig):
    name = "mechanics.invites"
    label = "invites"
    verbose_name = "Invite-N tasks"

    def ready(self) -> None:
        from campaigns import services as campaign_services
        from referrals.services import compliance

        from .compliance import launch_findings, rules_part

        if launch_findings not in campaign_services.LAUNCH_CHECKS:
            campaign_services.LAUNCH_CHECKS.append(launch_findings)
        if rules_part not in compliance.RULES_TEXT_PARTS:
            compliance.RULES_TEXT_PARTS.append(rules_part)
