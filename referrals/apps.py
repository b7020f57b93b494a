from django.apps import AppConfig


class ReferralsConfig(AppConfig):
    name = "referrals"
    verbose_name = "Referrals and rewards"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from campaigns.models import Campaign
        from referrals.api import schema  # noqa: F401 - registers the OpenAPI auth schemes
        from referrals.api.auth import token_state_forget
        from referrals.models import Participant
        from referrals.services.events import caches_clear

        # This process forgets cached campaign ids at once; other processes within seconds.
        post_save.connect(caches_clear, sender=Campaign, dispatch_uid="referrals-campaign-cache")
        post_delete.connect(caches_clear, sender=Campaign, dispatch_uid="referrals-campaign-cache-delete")
        post_save.connect(token_state_forget, sender=Participant, dispatch_uid="referrals-token-state")

        from campaigns import services as campaign_services
        from referrals.services.clone import reward_rules_clone
        from referrals.services.compliance import campaign_findings

        if campaign_findings not in campaign_services.LAUNCH_CHECKS:
            campaign_services.LAUNCH_CHECKS.append(campaign_findings)
        # Before the mechanics' hooks (their apps are ready after this one): an invite task's
        # tiers are the milestone rules this copies.
        if reward_rules_clone not in campaign_services.CLONE_HOOKS:
            campaign_services.CLONE_HOOKS.append(reward_rules_clone)
