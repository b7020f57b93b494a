import pytest
from django.core.management import call_command

from campaigns.models import Campaign
from mechanics.groupbuy.models import Deal

pytestmark = pytest.mark.django_db


def test_the_demo_group_buy_campaign_is_live_and_seeding_twice_changes_nothing():
    call_command("seed_demo_groupbuy")
    call_command("seed_demo_groupbuy")
    campaign = Campaign.objects.get(slug="team-tea")
    assert campaign.status == Campaign.Status.LIVE and campaign.kind == Campaign.Kind.GROUP_BUY
    assert Deal.objects.filter(campaign=campaign).count() == 2
    assert "Tea set for six" in campaign.reward_rules_text and campaign.reward_rules.count() == 1
