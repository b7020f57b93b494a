"""Reward rules for the demo campaigns (run by `make run` after seed_demo). Idempotent."""

from decimal import Decimal

from django.core.management.base import BaseCommand

from campaigns.models import Campaign
from referrals.models import RewardRule
from referrals.services.compliance import campaign_rules_text_refresh

RULES = {
    "cold-start": [
        {
            "name": "¥5 for each friend who builds a resume",
            "trigger": "invitee_valid",
            "amount": Decimal("5.00"),
            "cap_per_participant": 20,
            "cap_per_participant_daily": 5,
        },
        {
            "name": "Tier: 3 friends → ¥10 more",
            "trigger": "milestone",
            "milestone": 3,
            "amount": Decimal("10.00"),
        },
        {
            "name": "Tier: 10 friends → ¥30 more",
            "trigger": "milestone",
            "milestone": 10,
            "amount": Decimal("30.00"),
        },
        {
            "name": "Welcome points for the friend",
            "trigger": "invitee_valid",
            "beneficiary": "invitee",
            "kind": "points",
            "points": 100,
            "amount": None,
        },
    ],
    "spring-festival-cards": [
        {
            "name": "Lucky red envelope when a friend makes a card",
            "trigger": "invitee_valid",
            "amount_kind": "random",
            "amount": None,
            "amount_min": Decimal("0.88"),
            "amount_max": Decimal("8.88"),
            "cap_per_participant": 10,
        },
    ],
}


class Command(BaseCommand):
    help = "Create the demo reward rules (idempotent)."

    def handle(self, *args, **options):
        for slug, rules in RULES.items():
            campaign = Campaign.objects.filter(slug=slug).first()
            if campaign is None:
                continue
            for fields in rules:
                defaults = {"kind": "cash", "amount_kind": "fixed", **fields}
                RewardRule.objects.get_or_create(
                    campaign=campaign, name=defaults.pop("name"), defaults=defaults
                )
            campaign_rules_text_refresh(campaign_id=campaign.pk)
            self.stdout.write(f"  {campaign.name}: {campaign.reward_rules.count()} reward rules")
