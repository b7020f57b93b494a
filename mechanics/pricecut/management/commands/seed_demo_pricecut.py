"""Demo data for `make run`: a live price-cut campaign with an equal and a random offer and
a reward for completed price cuts. Idempotent: a second run finds what the first made."""

from datetime import timedelta
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign
from mechanics.pricecut.models import Offer, Schedule
from referrals.models import RewardRule
from referrals.services.compliance import campaign_rules_text_refresh

SLUG = "cut-the-price"


class Command(BaseCommand):
    help = "Create the demo price-cut campaign (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options):
        now = timezone.now()
        campaign, created = Campaign.objects.get_or_create(
            slug=SLUG,
            defaults={
                "name": "Cut the price (earbuds)",
                "kind": Campaign.Kind.PRICE_CUT,
                "description": "Friends help cut the price, down to the floor.",
                "starts_at": now - timedelta(hours=1),
                "ends_at": now + timedelta(days=30),
                "goal_metric": Campaign.GoalMetric.JOINS,
                "goal_target": 20000,
                "budget_total": Decimal("1000.00"),
                "valid_event_name": "order_paid",
            },
        )
        Offer.objects.get_or_create(
            campaign=campaign,
            item_code="EARBUDS-1",
            defaults={
                "title": "Wireless earbuds",
                "start_price_fen": 19900,
                "floor_price_fen": 9900,
                "helpers_needed": 5,
                "schedule": Schedule.DECREASING_CUTS,
            },
        )
        Offer.objects.get_or_create(
            campaign=campaign,
            item_code="KETTLE-1",
            defaults={
                "title": "Electric kettle",
                "start_price_fen": 12900,
                "floor_price_fen": 4900,
                "helpers_needed": 8,
                "schedule": Schedule.RANDOM_CUTS,
                "min_cut_fen": 500,
                "max_cut_fen": 1500,
            },
        )
        RewardRule.objects.get_or_create(
            campaign=campaign,
            name="50 points when your price cut completes",
            defaults={
                "trigger": RewardRule.Trigger.PRICE_CUT_COMPLETED,
                "beneficiary": RewardRule.Beneficiary.INVITEE,
                "kind": RewardRule.Kind.POINTS,
                "points": 50,
            },
        )
        campaign_rules_text_refresh(campaign_id=campaign.pk)
        if campaign.status == Campaign.Status.DRAFT:
            services.campaign_launch(campaign_id=campaign.pk)
        self.stdout.write(f"  {campaign.name}: {'created' if created else 'already there'}")
