"""Cloning a distribution campaign copies its plan (and, with the reward rules, its
commissions), not its distributors, bindings or orders."""

from decimal import Decimal

import pytest

from campaigns import services as campaign_services
from campaigns.models import Campaign
from mechanics.distribution import services
from mechanics.distribution.models import Binding, DistributionOrder, DistributionPlan, Distributor
from referrals.models import RefundedOrder, Reward, RewardRule
from referrals.services.clone import reward_rules_clone
from referrals.services.reward_triggers import rewards_for_order
from tests.conftest import share_link_for

from .conftest import commission

pytestmark = pytest.mark.django_db


def test_each_plan_field_is_either_copied_or_deliberately_not():
    fields = {field.name for field in DistributionPlan._meta.concrete_fields}
    assert fields == set(services.PLAN_FIELDS) | set(services.PLAN_FIELDS_NOT_COPIED)


def test_the_hook_is_registered_after_the_reward_rules():
    hooks = campaign_services.CLONE_HOOKS
    assert hooks.index(reward_rules_clone) < hooks.index(services.distribution_plan_clone)


def test_clone_copies_the_plan_and_commissions_not_the_sales_and_launches(shop, dan, cara, ops):
    # given a two-level shop whose distributors are approved by ops, and Dan, approved,
    # who sold to Cara through his link
    DistributionPlan.objects.filter(campaign=shop).update(admission=DistributionPlan.Admission.APPROVED)
    Campaign.objects.filter(pk=shop.pk).update(level2_enabled=True)
    commission(shop, name="L2", level=2, percent=Decimal("3"))
    dan_role, _ = services.distributor_apply(campaign=shop, participant=dan)
    services.distributor_decide(distributor_id=dan_role.pk, action="approve", by=ops)
    services.binding_bind(campaign=shop, customer=cara, code=share_link_for(shop, dan).code)
    rewards_for_order(campaign_id=shop.pk, buyer_id=cara.pk, order_id="SO-1", amount=Decimal("100.00"))
    RefundedOrder.objects.create(campaign=shop, order_id="SO-0")
    assert DistributionOrder.objects.filter(campaign=shop).exists()
    # when
    clone = campaign_services.campaign_clone(campaign_id=shop.pk, by=ops)
    # then the plan came along…
    plan, copy = DistributionPlan.objects.get(campaign=shop), DistributionPlan.objects.get(campaign=clone)
    assert copy.pk != plan.pk
    assert (copy.admission, copy.protection_days, copy.expiry_days) == ("approved", 7, 30)
    # …with both levels of commission (the reward rules) and the level-2 flag
    clone.refresh_from_db()
    assert clone.level2_enabled
    assert sorted(clone.reward_rules.values_list("level", "percent")) == [
        (1, Decimal("10.00")),
        (2, Decimal("3.00")),
    ]
    # …but none of the distributors, bindings, orders, commissions or refunds
    assert not Distributor.objects.filter(campaign=clone).exists()
    assert not Binding.objects.filter(campaign=clone).exists()
    assert not DistributionOrder.objects.filter(campaign=clone).exists()
    assert not Reward.objects.filter(campaign=clone).exists()
    assert not RefundedOrder.objects.filter(campaign=clone).exists()
    # the public rules describe the copied plan, and the copy passes its launch checks
    assert "For 7 days no other distributor's link" in clone.reward_rules_text
    assert "Distributors are approved by the organiser" in clone.reward_rules_text
    assert "Commissions go to two levels" in clone.reward_rules_text
    assert campaign_services.campaign_launch(campaign_id=clone.pk, by=ops).status == Campaign.Status.LIVE


def test_a_campaign_without_a_plan_copies_none(make_campaign, ops):
    source = make_campaign(kind=Campaign.Kind.DISTRIBUTION)
    clone = campaign_services.campaign_clone(campaign_id=source.pk, by=ops)
    assert not DistributionPlan.objects.filter(campaign=clone).exists()
    assert not RewardRule.objects.filter(campaign=clone).exists()
