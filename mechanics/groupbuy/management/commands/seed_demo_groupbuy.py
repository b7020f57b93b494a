"""Demo data for `make run`: a live group-buy campaign with two deals (one tiered) and a
reward for completed groups. Idempotent: a second run finds what the first made."""

from datetime import timedelta
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign
from mechanics.groupbuy.models import Deal, Tier
from referrals.models import RewardRule
from referrals.services.compliance import campaign_rules_text_refresh

SLUG = "team-tea"


class Command(BaseCommand):
    help = "Create the demo group-buy campaign (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options):
        now = timezone.now()
        campaign, created = Campaign.objects.get_or_create(
            slug=SLUG,
            defaults={
                "name": "Team tea (group buy)",
                "kind": Campaign.Kind.GROUP_BUY,
                "description": "Open a group with friends and buy spring oolong at the group price.",
                "starts_at": now - timedelta(hours=1),
                "ends_at": now + timedelta(days=30),
                "goal_metric": Campaign.GoalMetric.ORDERS,
                "goal_target": 5000,
                "budget_total": Decimal("2000.00"),
                "valid_event_name": "order_paid",
            },
        )
        Deal.objects.get_or_create(
            campaign=campaign,
            item_code="TEA-OOLONG-500",
            defaults={"title": "Spring oolong, 500 g", "original_price_fen": 9900, "group_price_fen": 5900},
        )
        tiered, made = Deal.objects.get_or_create(
            campaign=campaign,
            item_code="TEA-SET-6",
            defaults={
                "title": "Tea set for six",
                "original_price_fen": 29900,
                "group_price_fen": 19900,
                "group_size": 2,
                "max_size": 6,
                "hours": 48,
            },
        )
        if made:
            Tier.objects.bulk_create(
                [
                    Tier(deal=tiered, min_members=4, price_fen=17900),
                    Tier(deal=tiered, min_members=6, price_fen=15900),
                ]
            )
        RewardRule.objects.get_or_create(
            campaign=campaign,
            name="100 points for each member of a completed group",
            defaults={
                "trigger": RewardRule.Trigger.GROUP_COMPLETED,
                "beneficiary": RewardRule.Beneficiary.INVITEE,
                "kind": RewardRule.Kind.POINTS,
                "points": 100,
            },
        )
        campaign_rules_text_refresh(campaign_id=campaign.pk)
        if campaign.status == Campaign.Status.DRAFT:
            services.campaign_launch(campaign_id=campaign.pk)
        self.stdout.write(f"  {campaign.name}: {'created' if created else 'already there'}")
