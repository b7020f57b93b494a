"""Levels (1 on; 2 behind the campaign's flag; 3+ refused) and the compliance refusals of
the plan form and the launch."""

from decimal import Decimal

import pytest

from campaigns import services as campaign_services
from campaigns.models import Campaign
from config.errors import ConflictError
from mechanics.distribution import services
from mechanics.distribution.admin import DistributionPlanForm
from mechanics.distribution.compliance import plan_warnings
from mechanics.distribution.models import DistributionPlan
from referrals.models import Reward, RewardRule
from referrals.services.compliance import campaign_rules_text_refresh
from referrals.services.reward_triggers import rewards_for_order
from tests.conftest import share_link_for

from .conftest import commission


def level2_shop(make_campaign, **fields):
    campaign = make_campaign(kind=Campaign.Kind.DISTRIBUTION, status=Campaign.Status.LIVE, **fields)
    DistributionPlan.objects.create(campaign=campaign)
    commission(campaign, name="L1")
    commission(campaign, name="L2", level=2, percent=Decimal("3"))
    return campaign


@pytest.mark.django_db
def test_level2_goes_to_the_distributors_recruiter_only_with_the_flag(make_campaign, dan, dora, cara):
    campaign = level2_shop(make_campaign, level2_enabled=True)
    services.distributor_apply(campaign=campaign, participant=dan)
    # Dora joins through Dan's link and becomes a distributor: Dan recruited her
    services.distributor_apply(campaign=campaign, participant=dora, code=share_link_for(campaign, dan).code)
    services.binding_bind(campaign=campaign, customer=cara, code=share_link_for(campaign, dora).code)

    granted = rewards_for_order(
        campaign_id=campaign.pk, buyer_id=cara.pk, order_id="SO-1", amount=Decimal("100")
    )

    assert sorted((r.beneficiary_id, r.amount) for r in granted) == sorted(
        [(dora.pk, Decimal("10.00")), (dan.pk, Decimal("3.00"))]
    )
    # with the flag switched off later, level 2 earns nothing more
    Campaign.objects.filter(pk=campaign.pk).update(level2_enabled=False)
    granted = rewards_for_order(
        campaign_id=campaign.pk, buyer_id=cara.pk, order_id="SO-2", amount=Decimal("100")
    )
    assert [r.beneficiary_id for r in granted] == [dora.pk]


@pytest.mark.django_db
def test_level2_warns_the_plan_form_and_the_rules_say_two_levels(make_campaign):
    campaign = level2_shop(make_campaign, level2_enabled=True)
    assert [w for w in plan_warnings(campaign) if "level2_warning" in w]
    text = campaign_rules_text_refresh(campaign_id=campaign.pk)
    assert "Commissions go to two levels" in text
    assert "For 15 days no other distributor's link can take the customer over" in text
    assert "after 30 days the binding ends" in text


def plan_form(campaign, **fields):
    data = {"campaign": campaign.pk, "admission": "anyone", "protection_days": 7, "expiry_days": 30} | fields
    return DistributionPlanForm(data=data)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "setup, fields, code",
    [
        (lambda c: None, {"protection_days": 40}, "protection"),
        (lambda c: commission(c, name="L2", level=2), {}, "level2_needs_flag"),
        (lambda c: commission(c, name="L3", level=3), {}, "at_most_two_levels"),
        (
            lambda c: RewardRule.objects.create(
                campaign=c, name="Ten recruits", trigger="milestone", milestone=10, amount=Decimal("20")
            ),
            {},
            "distribution_no_headcount",
        ),
    ],
)
def test_the_plan_form_refuses_what_breaks_the_rules(make_campaign, setup, fields, code):
    campaign = make_campaign(kind=Campaign.Kind.DISTRIBUTION)
    setup(campaign)
    form = plan_form(campaign, **fields)
    assert not form.is_valid()
    assert code in str(form.errors)
    assert not DistributionPlan.objects.exists()


@pytest.mark.django_db
def test_the_plan_form_refuses_a_campaign_of_another_kind(make_campaign):
    campaign = make_campaign(kind=Campaign.Kind.REFERRAL)
    form = plan_form(campaign)
    assert not form.is_valid()  # not even offered: the field only lists distribution campaigns
    assert plan_form(make_campaign(kind=Campaign.Kind.DISTRIBUTION)).is_valid()


@pytest.mark.django_db
def test_launch_refuses_commissions_without_a_plan_or_paying_for_headcount(make_campaign, ops):
    campaign = make_campaign(kind=Campaign.Kind.DISTRIBUTION)
    commission(campaign)
    with pytest.raises(ConflictError) as refused:
        campaign_services.campaign_launch(campaign_id=campaign.pk, by=ops)
    assert "distribution_plan_needed" in refused.value.message
    DistributionPlan.objects.create(campaign=campaign)
    RewardRule.objects.create(
        campaign=campaign, name="Ten recruits", trigger="milestone", milestone=10, amount=Decimal("20")
    )
    with pytest.raises(ConflictError) as refused:
        campaign_services.campaign_launch(campaign_id=campaign.pk, by=ops)
    assert "distribution_no_headcount" in refused.value.message
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    RewardRule.objects.filter(trigger="milestone").delete()
    assert campaign_services.campaign_launch(campaign_id=campaign.pk, by=ops).status == Campaign.Status.LIVE


@pytest.mark.django_db
def test_launch_refuses_level3_and_unflagged_level2(make_campaign, ops):
    campaign = make_campaign(kind=Campaign.Kind.DISTRIBUTION)
    DistributionPlan.objects.create(campaign=campaign)
    commission(campaign, name="L3", level=3)
    with pytest.raises(ConflictError) as refused:
        campaign_services.campaign_launch(campaign_id=campaign.pk, by=ops)
    assert "at_most_two_levels" in refused.value.message
    RewardRule.objects.filter(name="L3").update(level=2)
    with pytest.raises(ConflictError) as refused:
        campaign_services.campaign_launch(campaign_id=campaign.pk, by=ops)
    assert "level2_needs_flag" in refused.value.message
    assert not Reward.objects.exists()


@pytest.mark.django_db
def test_a_campaign_without_a_plan_is_not_distributions_business(make_campaign):
    campaign = make_campaign()
    assert (
        services.commission_levels(campaign_id=campaign.pk, buyer_id=1, order_id="x", amount=Decimal("1"))
        is None
    )
    from mechanics.distribution.compliance import launch_check, rules_text_part

    assert launch_check(campaign) == [] and rules_text_part(campaign) == []
