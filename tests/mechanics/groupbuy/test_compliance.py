"""What group buying refuses (at save and at launch) and what its public rules say."""

import pytest

from campaigns import services as campaign_services
from campaigns.models import Campaign
from config.errors import ConflictError
from mechanics.groupbuy.compliance import VIRTUAL_FILL_TEXT
from mechanics.groupbuy.models import Deal, Tier
from referrals.models import RewardRule
from referrals.services.compliance import campaign_rules_text_refresh, rule_findings

pytestmark = pytest.mark.django_db


@pytest.fixture
def draft(make_campaign):
    return make_campaign(kind=Campaign.Kind.GROUP_BUY)


def launch_refusal(campaign) -> str:
    with pytest.raises(ConflictError) as refused:
        campaign_services.campaign_launch(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT  # nothing changed
    return refused.value.message


def test_a_group_buy_campaign_without_a_deal_cannot_launch(draft):
    assert "[group_buy_needs_deal]" in launch_refusal(draft)


def test_tiers_that_do_not_drop_the_price_are_refused_at_launch(draft, make_deal):
    deal = make_deal(campaign=draft, group_size=2, max_size=4)
    Tier.objects.create(deal=deal, min_members=3, price_fen=6500)  # above the group price
    Tier.objects.create(deal=deal, min_members=9, price_fen=4000)  # beyond the most members
    message = launch_refusal(draft)
    assert "[tier_price]" in message and "[tier_size]" in message


def test_virtual_fill_must_be_disclosed_in_the_public_rules(draft, make_deal):
    # given virtual fill switched on behind the rules' back (no refresh of the public text)
    make_deal(campaign=draft, virtual_fill=True, virtual_fill_max_missing=1)
    assert "[virtual_fill_undisclosed]" in launch_refusal(draft)
    # when the rules are regenerated they say it, and the campaign launches
    text = campaign_rules_text_refresh(campaign_id=draft.pk)
    assert VIRTUAL_FILL_TEXT.format(n=1) in text
    assert campaign_services.campaign_launch(campaign_id=draft.pk).status == Campaign.Status.LIVE


def test_the_rules_say_what_a_group_needs_and_what_happens_if_it_fails(draft, make_deal):
    make_deal(campaign=draft, group_size=3, hours=24, tiers=())
    make_deal(campaign=draft, title="Green tea", group_size=2, max_size=3, tiers=[(3, 5000)])
    text = campaign_rules_text_refresh(campaign_id=draft.pk)
    assert "¥59.00 instead of ¥99.00 when 3 people, the leader included, join within 24 hours." in text
    assert "from 3 people ¥50.00" in text and "refunded the difference" in text
    assert "refunded in full" in text
    assert "Virtual fill" not in text  # off by default, and not mentioned when off
    assert "Sharing by itself never earns a reward." in text


def test_the_deal_refuses_impossible_terms(make_deal, draft, make_campaign):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as price:
        make_deal(campaign=draft, group_price_fen=9900)  # not below the original price
    assert "group_price_fen" in price.value.message_dict
    with pytest.raises(ValidationError) as kind:
        make_deal(campaign=make_campaign(kind=Campaign.Kind.REFERRAL))
    assert "campaign" in kind.value.message_dict
    with pytest.raises(ValidationError) as fill:
        make_deal(campaign=draft, group_size=2, virtual_fill=True, virtual_fill_max_missing=2)
    assert "virtual_fill_max_missing" in fill.value.message_dict
    assert not Deal.objects.exists()


def test_a_group_reward_outside_a_group_buy_campaign_is_refused(make_campaign):
    campaign = make_campaign(kind=Campaign.Kind.REFERRAL)
    rule = RewardRule(
        campaign=campaign,
        name="x",
        trigger=RewardRule.Trigger.GROUP_COMPLETED,
        beneficiary=RewardRule.Beneficiary.INVITEE,
        kind=RewardRule.Kind.POINTS,
        points=5,
    )
    assert "trigger_needs_mechanic" in [f.code for f in rule_findings(rule, campaign)]
