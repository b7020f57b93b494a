"""Cloning a check-in campaign copies its plan (and, with the reward rules, what each tier
gives), not the check-ins or the tiers reached."""

import pytest

from campaigns import services as campaign_services
from campaigns.models import Campaign
from mechanics.checkin import services
from mechanics.checkin.models import Checkin, CheckinPlan, StreakTier
from referrals.models import Referral
from referrals.services.clone import reward_rules_clone

pytestmark = pytest.mark.django_db


def test_each_plan_field_is_either_copied_or_deliberately_not():
    fields = {field.name for field in CheckinPlan._meta.concrete_fields}
    assert fields == set(services.PLAN_FIELDS) | set(services.PLAN_FIELDS_NOT_COPIED)


def test_the_hook_is_registered_after_the_reward_rules():
    hooks = campaign_services.CLONE_HOOKS
    assert hooks.index(reward_rules_clone) < hooks.index(services.checkin_plan_clone)


def test_clone_copies_the_plan_and_tier_rules_not_the_checkins_and_launches(daily, clock, sharer, ops):
    # given a check-in campaign where Sam checked in three days running (the 3-day tier)
    for day in range(3):
        clock.days(day)
        services.checkin_do(campaign=daily, participant=sharer)
    clock.days(0)
    assert StreakTier.objects.filter(campaign=daily, participant=sharer, days=3).exists()
    # when
    clone = campaign_services.campaign_clone(campaign_id=daily.pk, by=ops)
    # then the plan came along…
    plan, copy = CheckinPlan.objects.get(campaign=daily), CheckinPlan.objects.get(campaign=clone)
    assert copy.pk != plan.pk
    for field in services.PLAN_FIELDS:
        assert getattr(copy, field) == getattr(plan, field), field
    assert copy.streak_tiers == [3, 7]
    # …with the rules of the daily point and of each tier
    assert sorted(clone.reward_rules.values_list("trigger_event", flat=True)) == [
        "checked_in",
        "checkin_streak_3",
        "checkin_streak_7",
    ]
    # …but none of the check-ins, tiers reached or members
    assert not Checkin.objects.filter(campaign=clone).exists()
    assert not StreakTier.objects.filter(campaign=clone).exists()
    assert not Referral.objects.filter(campaign=clone).exists()
    assert Checkin.objects.filter(campaign=daily).count() == 3
    # the public rules describe the copied plan, and the copy passes its launch checks
    clone.refresh_from_db()
    assert "Streak rewards at 3, 7 days in a row" in clone.reward_rules_text
    assert "you have 1, each for a day within the last 3 days" in clone.reward_rules_text
    assert campaign_services.campaign_launch(campaign_id=clone.pk, by=ops).status == Campaign.Status.LIVE


def test_a_plan_that_requires_sharing_is_copied_as_it_is_and_still_refused_at_launch(daily, ops):
    CheckinPlan.objects.filter(campaign=daily).update(share_required=True)
    clone = campaign_services.campaign_clone(campaign_id=daily.pk, by=ops)
    assert clone.checkin_plan.share_required
    with pytest.raises(campaign_services.ConflictError) as refused:
        campaign_services.campaign_launch(campaign_id=clone.pk, by=ops)
    assert "[checkin_no_share_condition]" in refused.value.message
    assert Campaign.objects.get(pk=clone.pk).status == Campaign.Status.DRAFT
