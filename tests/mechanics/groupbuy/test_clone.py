"""Cloning a group-buy campaign copies its deals and their price tiers, not its groups."""

import pytest

from campaigns import services as campaign_services
from campaigns.models import Campaign
from mechanics.groupbuy.clone import (
    DEAL_FIELDS,
    DEAL_FIELDS_NOT_COPIED,
    TIER_FIELDS,
    TIER_FIELDS_NOT_COPIED,
    group_deals_clone,
)
from mechanics.groupbuy.compliance import VIRTUAL_FILL_TEXT
from mechanics.groupbuy.models import Deal, Group, Member, Signal, Tier
from mechanics.groupbuy.services import group_join, group_open
from referrals.services.compliance import campaign_rules_text_refresh

pytestmark = pytest.mark.django_db


def field_names(model) -> set[str]:
    return {field.name for field in model._meta.concrete_fields}


def test_each_deal_and_tier_field_is_either_copied_or_deliberately_not():
    assert field_names(Deal) == set(DEAL_FIELDS) | set(DEAL_FIELDS_NOT_COPIED)
    assert field_names(Tier) == set(TIER_FIELDS) | set(TIER_FIELDS_NOT_COPIED)


def test_the_hook_is_registered_after_the_reward_rules():
    hooks = [hook.__name__ for hook in campaign_services.CLONE_HOOKS]
    assert hooks.index("reward_rules_clone") < hooks.index(group_deals_clone.__name__)


def test_clone_copies_the_deals_and_tiers_not_the_groups_and_launches(
    gb_campaign, make_deal, group_rule, make_participant, ops
):
    # given a group-buy campaign with a tiered deal, a virtual-fill deal and a switched-off
    # deal, whose public rules are written, and a completed group with its signals
    tiered = make_deal(group_size=2, max_size=5, hours=12, tiers=[(3, 4900), (5, 3900)])
    make_deal(title="Green tea", virtual_fill=True, virtual_fill_max_missing=1, group_size=3)
    make_deal(title="Old stock", is_active=False)
    campaign_rules_text_refresh(campaign_id=gb_campaign.pk)
    lea, bob = make_participant(nickname="Lea"), make_participant(nickname="Bob")
    group, _ = group_open(deal_id=tiered.pk, leader=lea, order_id="SO-1")
    group_join(group_code=group.code, participant=bob, order_id="SO-2")
    assert Signal.objects.filter(group=group).exists()
    # when
    clone = campaign_services.campaign_clone(campaign_id=gb_campaign.pk, by=ops)
    # then every deal has its copy, field for field, with its tiers
    originals = list(Deal.objects.filter(campaign=gb_campaign).order_by("id"))
    copies = list(Deal.objects.filter(campaign=clone).order_by("id"))
    assert [d.title for d in copies] == ["Oolong tea, 500 g", "Green tea", "Old stock"]
    for original, copy in zip(originals, copies, strict=True):
        assert copy.pk != original.pk
        for field in DEAL_FIELDS:
            assert getattr(copy, field) == getattr(original, field), (original.title, field)
    assert list(copies[0].tiers.values_list("min_members", "price_fen")) == [(3, 4900), (5, 3900)]
    assert Tier.objects.filter(deal__campaign=gb_campaign).count() == 2  # the original keeps its own
    # …and none of the groups, members or signals
    assert not Group.objects.filter(campaign=clone).exists()
    assert not Group.objects.filter(deal__in=copies).exists()
    assert not Member.objects.filter(deal__in=copies).exists()
    assert not Signal.objects.filter(group__campaign=clone).exists()
    # the public rules describe the copied deals and disclose the virtual fill, so the copy
    # passes its launch checks (the group rule came along with the reward rules)
    clone.refresh_from_db()
    assert "Group buy “Green tea”" in clone.reward_rules_text
    assert VIRTUAL_FILL_TEXT.format(n=1) in clone.reward_rules_text
    assert clone.reward_rules.get().name == "Group completed"
    assert campaign_services.campaign_launch(campaign_id=clone.pk, by=ops).status == Campaign.Status.LIVE


def test_a_campaign_without_deals_copies_none(make_campaign, ops):
    source = make_campaign(kind=Campaign.Kind.GROUP_BUY)
    clone = campaign_services.campaign_clone(campaign_id=source.pk, by=ops)
    assert not Deal.objects.filter(campaign=clone).exists()
