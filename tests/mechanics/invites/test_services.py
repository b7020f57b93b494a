"""Invite-task services: tiers as milestone rules, the sweep (the beat task), refusals, races."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.services import campaign_launch
from config.errors import ApplicationError
from mechanics.invites.models import InviteTask, TierReached
from mechanics.invites.services import TierSpec, invite_tiers_set
from mechanics.invites.tasks import invite_tiers_sweep_task
from referrals.models import Event, Referral, Reward, RewardRule
from referrals.services.attribution import campaign_join, share_link_get_or_create
from referrals.services.reward_triggers import rewards_for_referral


def invite(campaign, sharer, friends, *, valid: int, valid_at=None):
    """Join `friends` through the sharer's link; the first `valid` of them become valid."""
    campaign_join(campaign=campaign, participant=sharer)
    link, _ = share_link_get_or_create(campaign=campaign, sharer=sharer)
    for n, friend in enumerate(friends):
        referral = campaign_join(campaign=campaign, participant=friend, code=link.code)["referral"]
        if n < valid:
            at = (valid_at or timezone.now()) - timedelta(minutes=5) + timedelta(seconds=n)
            Referral.objects.filter(pk=referral.pk).update(
                status="valid", valid_at=at, valid_event="resume_completed"
            )


def test_tiers_are_milestone_rules_and_set_the_invite_target(task_campaign):
    rules = RewardRule.objects.filter(campaign=task_campaign, trigger="milestone", is_active=True)
    assert sorted((r.milestone, r.amount, r.cap_per_participant) for r in rules) == [
        (3, Decimal("5.00"), 1),
        (10, Decimal("20.00"), 1),
    ]
    assert task_campaign.invite_target == 10


def test_setting_tiers_again_updates_in_place_and_switches_off_dropped_ones(task_campaign):
    three = RewardRule.objects.get(campaign=task_campaign, milestone=3)
    invite_tiers_set(
        campaign_id=task_campaign.pk,
        tiers=[TierSpec(count=3, amount=Decimal("6.00")), TierSpec(count=5, kind="points", points=500)],
    )
    three.refresh_from_db()
    assert three.amount == Decimal("6.00") and three.is_active
    assert not RewardRule.objects.get(campaign=task_campaign, milestone=10).is_active
    assert RewardRule.objects.get(campaign=task_campaign, milestone=5).points == 500
    task_campaign.refresh_from_db()
    assert task_campaign.invite_target == 5
    # the same call again changes nothing
    invite_tiers_set(
        campaign_id=task_campaign.pk,
        tiers=[TierSpec(count=3, amount=Decimal("6.00")), TierSpec(count=5, kind="points", points=500)],
    )
    assert RewardRule.objects.filter(campaign=task_campaign, trigger="milestone").count() == 3


@pytest.mark.parametrize(
    ("tiers", "code_in_message"),
    [
        (
            [TierSpec(count=3, amount=Decimal("10.00")), TierSpec(count=10, amount=Decimal("5.00"))],
            "invite_tiers_increasing",
        ),
        (
            [TierSpec(count=3, amount=Decimal("5.00")), TierSpec(count=3, amount=Decimal("6.00"))],
            "invite_tiers_increasing",
        ),
        ([TierSpec(count=3, amount=Decimal("500.00"))], "cash_bounds"),
        ([TierSpec(count=c, amount=Decimal("1.00")) for c in range(1, 12)], "invite_too_many_tiers"),
        ([], "invite_tiers_missing"),
    ],
)
def test_bad_tiers_are_refused_and_nothing_changes(task_campaign, tiers, code_in_message):
    before = list(
        RewardRule.objects.filter(campaign=task_campaign).values_list(
            "pk", "milestone", "amount", "is_active"
        )
    )
    with pytest.raises(ApplicationError) as refused:
        invite_tiers_set(campaign_id=task_campaign.pk, tiers=tiers)
    assert refused.value.code == "invite_tiers_refused" and code_in_message in refused.value.message
    after = list(
        RewardRule.objects.filter(campaign=task_campaign).values_list(
            "pk", "milestone", "amount", "is_active"
        )
    )
    assert after == before
    task_campaign.refresh_from_db()
    assert task_campaign.invite_target == 10


def test_tiers_are_refused_when_a_bare_join_makes_a_friend_valid(make_campaign):
    campaign = make_campaign(kind=Campaign.Kind.INVITE_TASK, valid_event_name="join")
    InviteTask.objects.create(campaign=campaign, title="Task")
    with pytest.raises(ApplicationError) as refused:
        invite_tiers_set(campaign_id=campaign.pk, tiers=[TierSpec(count=3, amount=Decimal("5.00"))])
    assert "invite_needs_valid_action" in refused.value.message
    assert "needs_deep_interaction" in refused.value.message
    assert not RewardRule.objects.filter(campaign=campaign).exists()


def test_launch_refusals(make_campaign):
    campaign = make_campaign(kind=Campaign.Kind.INVITE_TASK, valid_event_name="share_timeline")
    with pytest.raises(ApplicationError) as refused:
        campaign_launch(campaign_id=campaign.pk)
    assert "[invite_task_missing]" in refused.value.message
    InviteTask.objects.create(campaign=campaign, title="Task")
    with pytest.raises(ApplicationError) as refused:
        campaign_launch(campaign_id=campaign.pk)
    assert (
        "[invite_tiers_missing]" in refused.value.message
        and "[invite_needs_valid_action]" in refused.value.message
    )
    # a milestone rule made by hand that pays the invitee is refused as a tier
    Campaign.objects.filter(pk=campaign.pk).update(valid_event_name="resume_completed")
    RewardRule.objects.create(
        campaign=campaign, name="odd", trigger="milestone", milestone=3, beneficiary="invitee", amount="1.00"
    )
    with pytest.raises(ApplicationError) as refused:
        campaign_launch(campaign_id=Campaign.objects.get(pk=campaign.pk).pk)
    assert "[invite_tier_level]" in refused.value.message
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.DRAFT


def test_a_compliant_task_launches(make_campaign):
    campaign = make_campaign(kind=Campaign.Kind.INVITE_TASK, valid_event_name="resume_completed")
    InviteTask.objects.create(campaign=campaign, title="Task")
    invite_tiers_set(campaign_id=campaign.pk, tiers=[TierSpec(count=3, amount=Decimal("5.00"))])
    assert campaign_launch(campaign_id=campaign.pk).status == Campaign.Status.LIVE


def test_sweep_records_tiers_reached_once_with_their_event(task_campaign, sharer, make_participant):
    friends = [make_participant() for _ in range(4)]
    invite(task_campaign, sharer, friends, valid=3)
    # when the beat task runs (twice)
    first = invite_tiers_sweep_task()
    second = invite_tiers_sweep_task()
    # then the 3-friend tier is recorded once, at the time the third friend became valid
    assert first["tiers"] == 1 and second["tiers"] == 0
    reached = TierReached.objects.get(participant=sharer)
    third = Referral.objects.filter(inviter=sharer, status="valid").order_by("valid_at")[2]
    assert reached.milestone == 3 and reached.reached_at == third.valid_at
    [event] = Event.objects.filter(name="invite_tier_reached", participant_id=sharer.pk)
    assert event.properties == {"tier": 3, "valid": 3, "top": False}
    task = InviteTask.objects.get(campaign=task_campaign)
    assert task.swept_until is not None


def test_sweep_grants_a_tier_added_after_it_was_passed(task_campaign, sharer, make_participant):
    # given Sam already has 4 valid friends and his ¥5 tier (the ledger granted it)
    friends = [make_participant() for _ in range(4)]
    invite(task_campaign, sharer, friends, valid=4)
    latest = Referral.objects.filter(inviter=sharer, status="valid").order_by("-valid_at").first()
    rewards_for_referral(referral_id=latest.pk, trigger="invitee_valid")
    invite_tiers_sweep_task()
    # when ops add a 4-friend tier
    invite_tiers_set(
        campaign_id=task_campaign.pk,
        tiers=[
            TierSpec(count=3, amount=Decimal("5.00")),
            TierSpec(count=4, amount=Decimal("6.00")),
            TierSpec(count=10, amount=Decimal("20.00")),
        ],
    )
    # then the next sweep records it and the ledger grants it, and nothing twice
    assert invite_tiers_sweep_task()["tiers"] == 1
    invite_tiers_sweep_task()
    tiers = Reward.objects.filter(beneficiary=sharer, source__startswith="milestone:")
    assert sorted(tiers.values_list("source", "amount")) == [
        ("milestone:3", Decimal("5.00")),
        ("milestone:4", Decimal("6.00")),
    ]
    assert sorted(TierReached.objects.filter(participant=sharer).values_list("milestone", flat=True)) == [
        3,
        4,
    ]


def test_sweep_skips_campaigns_long_ended(task_campaign, sharer, make_participant):
    invite(task_campaign, sharer, [make_participant() for _ in range(3)], valid=3)
    Campaign.objects.filter(pk=task_campaign.pk).update(
        status="ended",
        starts_at=timezone.now() - timedelta(days=20),
        ends_at=timezone.now() - timedelta(days=2),
    )
    assert invite_tiers_sweep_task() == {"tasks": 0, "inviters": 0, "tiers": 0}


def run_together(target, times):
    barrier = threading.Barrier(times)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(target())
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(times)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_sweeps_record_each_tier_once(make_campaign, make_participant):
    campaign = make_campaign(
        kind=Campaign.Kind.INVITE_TASK, status=Campaign.Status.LIVE, valid_event_name="paid"
    )
    InviteTask.objects.create(campaign=campaign, title="Task")
    invite_tiers_set(campaign_id=campaign.pk, tiers=[TierSpec(count=2, amount=Decimal("2.00"))])
    sharers = [make_participant() for _ in range(5)]
    for sharer in sharers:
        invite(campaign, sharer, [make_participant() for _ in range(2)], valid=2)
    results, errors = run_together(invite_tiers_sweep_task, 4)
    assert errors == []
    assert sum(r["tiers"] for r in results) == 5
    assert TierReached.objects.count() == 5
    assert Event.objects.filter(name="invite_tier_reached").count() == 5
    assert Reward.objects.filter(source="milestone:2").count() == 5


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_friends_becoming_valid_together_unlock_a_tier_once(make_campaign, make_participant):
    """Six friends qualify at the same moment, each grant running in its own thread: the
    3-friend tier is granted once, and progress reads 6 valid."""
    from mechanics.invites.selectors import progress_for
    from referrals.services.attribution import referral_mark_valid

    campaign = make_campaign(
        kind=Campaign.Kind.INVITE_TASK, status=Campaign.Status.LIVE, valid_event_name="paid"
    )
    InviteTask.objects.create(campaign=campaign, title="Task")
    invite_tiers_set(campaign_id=campaign.pk, tiers=[TierSpec(count=3, amount=Decimal("5.00"))])
    sharer = make_participant()
    friends = [make_participant() for _ in range(6)]
    invite(campaign, sharer, friends, valid=0)
    queue = list(friends)
    lock = threading.Lock()

    def qualify():
        with lock:
            friend = queue.pop()
        referral_mark_valid(
            campaign=campaign, participant_id=friend.pk, event_name="paid", occurred_at=timezone.now()
        )
        referral = Referral.objects.get(campaign=campaign, invitee=friend)
        return rewards_for_referral(referral_id=referral.pk, trigger="invitee_valid")

    _, errors = run_together(qualify, 6)
    assert errors == []
    assert Reward.objects.filter(beneficiary=sharer, source="milestone:3").count() == 1
    progress = progress_for(campaign=Campaign.objects.get(pk=campaign.pk), participant=sharer)
    assert progress["valid_friends"] == 6 and progress["completed"] is True
    assert progress["message"] == "Task complete: every tier is unlocked."


def test_coupon_tiers_made_on_the_campaign_page_are_kept(task_campaign):
    coupon = RewardRule.objects.create(
        campaign=task_campaign,
        name="Coupon at 5",
        trigger="milestone",
        milestone=5,
        kind="coupon",
        amount="10.00",
    )
    invite_tiers_set(campaign_id=task_campaign.pk, tiers=[TierSpec(count=3, amount=Decimal("5.00"))])
    coupon.refresh_from_db()
    task_campaign.refresh_from_db()
    assert coupon.is_active and task_campaign.invite_target == 5
    # and a cash tier at the coupon's count is refused as a duplicate
    with pytest.raises(ApplicationError) as refused:
        invite_tiers_set(
            campaign_id=task_campaign.pk,
            tiers=[
                TierSpec(count=3, amount=Decimal("5.00")),
                TierSpec(count=6, amount=Decimal("6.00")),
                TierSpec(count=5, amount=Decimal("5.50")),
            ],
        )
    assert "Two tiers need the same number of friends" in refused.value.message
    coupon.refresh_from_db()
    assert coupon.kind == "coupon" and coupon.is_active
