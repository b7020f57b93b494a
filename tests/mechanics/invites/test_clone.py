"""Cloning an invite-task campaign copies the task, whose tiers are the milestone reward
rules copied with the campaign's reward rules; not who reached which tier."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns import services as campaign_services
from campaigns.models import Campaign
from config.errors import ApplicationError
from mechanics.invites.models import InviteTask, TierReached
from mechanics.invites.selectors import tiers_of
from mechanics.invites.services import (
    TASK_FIELDS,
    TASK_FIELDS_NOT_COPIED,
    TierSpec,
    invite_task_clone,
    invite_tiers_set,
    invite_tiers_sweep,
)
from referrals.models import Referral, Reward, RewardRule
from referrals.services.attribution import campaign_join, share_link_get_or_create
from referrals.services.clone import reward_rules_clone

pytestmark = pytest.mark.django_db


def ladder(campaign) -> list[tuple]:
    return [
        (t.name, t.milestone, t.kind, t.amount, t.points, t.cap_per_participant) for t in tiers_of(campaign)
    ]


def test_each_task_field_is_either_copied_or_deliberately_not():
    fields = {field.name for field in InviteTask._meta.concrete_fields}
    assert fields == set(TASK_FIELDS) | set(TASK_FIELDS_NOT_COPIED)


def test_the_task_is_copied_after_the_reward_rules_it_takes_its_tiers_from():
    hooks = campaign_services.CLONE_HOOKS
    assert hooks.index(reward_rules_clone) < hooks.index(invite_task_clone)


def test_clone_copies_the_task_and_its_tiers_not_who_reached_them_and_launches(
    task_campaign, sharer, make_participant, ops
):
    # given a task with a description, its tiers changed once (a dropped tier is switched
    # off), and a sharer whose three valid friends reached the first tier
    InviteTask.objects.filter(campaign=task_campaign).update(description="Three friends open the chest.")
    invite_tiers_set(
        campaign_id=task_campaign.pk,
        tiers=[
            TierSpec(count=3, amount=Decimal("5.00")),
            TierSpec(count=5, kind=RewardRule.Kind.POINTS, points=500),
            TierSpec(count=10, amount=Decimal("20.00"), name="Gold"),
        ],
    )
    invite_tiers_set(
        campaign_id=task_campaign.pk,
        tiers=[
            TierSpec(count=3, amount=Decimal("5.00")),
            TierSpec(count=10, amount=Decimal("20.00"), name="Gold"),
        ],
    )
    campaign_join(campaign=task_campaign, participant=sharer)
    link, _ = share_link_get_or_create(campaign=task_campaign, sharer=sharer)
    for n in range(3):
        referral = campaign_join(campaign=task_campaign, participant=make_participant(), code=link.code)[
            "referral"
        ]
        Referral.objects.filter(pk=referral.pk).update(
            status="valid", valid_at=timezone.now() - timedelta(minutes=5 - n), valid_event="resume_completed"
        )
    assert invite_tiers_sweep()["tiers"] == 1
    task = InviteTask.objects.get(campaign=task_campaign)
    assert task.swept_until is not None
    # when
    clone = campaign_services.campaign_clone(campaign_id=task_campaign.pk, by=ops)
    # then the task came along, its sweep not begun…
    copy = InviteTask.objects.get(campaign=clone)
    assert (copy.title, copy.description) == ("Open the treasure chest", "Three friends open the chest.")
    assert copy.swept_until is None
    # …its tiers are the original's (the switched-off one stays off), and so is the target
    assert ladder(clone) == ladder(task_campaign)
    assert [t.milestone for t in tiers_of(clone)] == [3, 10]
    assert not clone.reward_rules.get(milestone=5).is_active
    assert {t.campaign_id for t in tiers_of(clone)} == {clone.pk}
    clone.refresh_from_db()
    assert clone.invite_target == 10
    # …but not who reached which tier, nor their rewards
    assert not TierReached.objects.filter(campaign=clone).exists()
    assert not Reward.objects.filter(campaign=clone).exists()
    assert TierReached.objects.filter(campaign=task_campaign).count() == 1
    # the public rules describe the copied task and tiers, and the copy passes its launch checks
    assert "Open the treasure chest: invite friends" in clone.reward_rules_text
    assert "Tiers: 3 friends → ¥5.00 cash; 10 friends → ¥20.00 cash." in clone.reward_rules_text
    assert campaign_services.campaign_launch(campaign_id=clone.pk, by=ops).status == Campaign.Status.LIVE


def test_a_task_copied_before_its_tiers_is_refused_and_leaves_no_draft(task_campaign, ops, monkeypatch):
    # given the hooks in the wrong order: the task before the reward rules
    hooks = [h for h in campaign_services.CLONE_HOOKS if h is not reward_rules_clone]
    hooks.insert(0, reward_rules_clone)
    hooks.remove(invite_task_clone)
    hooks.insert(0, invite_task_clone)
    monkeypatch.setattr(campaign_services, "CLONE_HOOKS", hooks)
    counts = (Campaign.objects.count(), InviteTask.objects.count(), RewardRule.objects.count())
    # when / then
    with pytest.raises(ApplicationError) as refused:
        campaign_services.campaign_clone(campaign_id=task_campaign.pk, by=ops)
    assert refused.value.code == "invite_tiers_not_copied"
    assert (Campaign.objects.count(), InviteTask.objects.count(), RewardRule.objects.count()) == counts
