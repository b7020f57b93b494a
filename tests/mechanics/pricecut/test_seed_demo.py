import pytest
from django.core.management import call_command

from campaigns.models import Campaign
from mechanics.pricecut.models import Offer

pytestmark = pytest.mark.django_db


def test_the_demo_price_cut_campaign_is_live_and_seeding_twice_changes_nothing():
    call_command("seed_demo_pricecut")
    call_command("seed_demo_pricecut")
    campaign = Campaign.objects.get(slug="cut-the-price")
    assert campaign.status == Campaign.Status.LIVE and campaign.kind == Campaign.Kind.PRICE_CUT
    assert Offer.objects.filter(campaign=campaign).count() == 2
    assert "between ¥5.00 and ¥15.00" in campaign.reward_rules_text and campaign.reward_rules.count() == 1
