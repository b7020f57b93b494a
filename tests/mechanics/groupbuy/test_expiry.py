"""Deadlines, handled by the beat task: expiry with refunds, virtual fill, tiered settlement."""

from datetime import timedelta

import pytest
from django.utils import timezone

from mechanics.groupbuy import services
from mechanics.groupbuy.models import Group, Member, Signal
from mechanics.groupbuy.tasks import groups_close_due_task
from referrals.models import Event, Reward

from .conftest import hours_ago

pytestmark = pytest.mark.django_db


def open_at(deal, leader, when, *joiners):
    group, _ = services.group_open(deal_id=deal.pk, leader=leader, now=when, order_id="SO-L")
    for p in joiners:
        services.group_join(group_code=group.code, participant=p, now=when + timedelta(minutes=5))
    return Group.objects.get(pk=group.pk)


def test_a_group_not_full_at_its_deadline_expires_releases_and_signals_refunds(
    deal, make_participant, api_as
):
    # given a group of 3 opened 25 hours ago with only 2 members
    lea, bob = make_participant(), make_participant()
    group = open_at(deal, lea, hours_ago(25), bob)
    fresh = open_at(deal, make_participant(), hours_ago(1))
    # when beat runs
    counts = groups_close_due_task()
    # then it expired, every member was released and refunded their price
    group.refresh_from_db()
    assert counts["expired"] == 1 and group.status == "expired" and group.ended_at is not None
    assert set(Member.objects.filter(group=group).values_list("status", flat=True)) == {"released"}
    refunds = Signal.objects.filter(group=group, kind="refund")
    assert sorted(refunds.values_list("amount_fen", flat=True)) == [5900, 5900]
    assert Event.objects.filter(name="group_expired", participant_id=lea.pk).count() == 1
    # the fresh group is untouched; a second run changes nothing
    assert Group.objects.get(pk=fresh.pk).status == "open"
    assert groups_close_due_task()["expired"] == 0 and refunds.count() == 2
    # a late join is refused; the released members may open or join another group
    response = api_as(make_participant()).post(f"/api/v1/groups/{group.code}/join", {}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "group_expired")
    assert services.group_open(deal_id=deal.pk, leader=bob)[1] is True


def test_a_join_after_the_deadline_but_before_beat_is_refused_and_changes_nothing(deal, make_participant):
    group = open_at(deal, make_participant(), hours_ago(25))
    with pytest.raises(Exception) as refused:
        services.group_join(group_code=group.code, participant=make_participant())
    assert refused.value.code == "group_expired"
    group.refresh_from_db()
    assert (group.status, group.member_count) == ("open", 1)


def test_virtual_fill_completes_a_group_one_short_without_rewards(
    make_deal, make_participant, group_rule, eager_tasks, django_capture_on_commit_callbacks
):
    deal = make_deal(group_size=3, virtual_fill=True, virtual_fill_max_missing=1)
    short_one = open_at(deal, make_participant(), hours_ago(25), make_participant())
    short_two = open_at(deal, make_participant(), hours_ago(25))
    with django_capture_on_commit_callbacks(execute=True):
        counts = groups_close_due_task()
    assert counts["completed"] == 1 and counts["expired"] == 1
    short_one.refresh_from_db()
    assert (short_one.status, short_one.member_count, short_one.virtual_count) == ("completed", 2, 1)
    assert Signal.objects.filter(group=short_one, kind="fulfil").count() == 2
    assert not Reward.objects.exists()  # the platform filled it: no group rewards
    assert Group.objects.get(pk=short_two.pk).status == "expired"


def test_a_completed_tiered_group_settles_its_price_at_the_deadline(make_deal, make_participant):
    deal = make_deal(group_size=2, max_size=5, tiers=[(3, 5000), (5, 4000)])
    group = open_at(deal, make_participant(), hours_ago(25), make_participant(), make_participant())
    assert group.status == "completed" and group.closed_at is None
    counts = groups_close_due_task()
    group.refresh_from_db()
    assert counts["closed"] == 1 and group.final_price_fen == 5000 and group.closed_at is not None
    assert (
        list(Signal.objects.filter(kind="refund_difference").values_list("amount_fen", flat=True))
        == [900] * 3
    )


def test_the_sweep_resends_grants_a_lost_task_never_made(deal, make_participant, group_rule, eager_tasks):
    # completed 10 minutes ago; its grant tasks were lost (on_commit never ran here)
    group = open_at(deal, make_participant(), timezone.now() - timedelta(minutes=15))
    for p in (make_participant(), make_participant()):
        services.group_join(group_code=group.code, participant=p, now=timezone.now() - timedelta(minutes=10))
    assert not Reward.objects.exists()
    assert services.group_rewards_sweep() == 3
    assert Reward.objects.filter(source=f"group:{group.pk}").count() == 3
    assert services.group_rewards_sweep() == 0


def test_filling_groups_of_a_campaign_ended_early_expire_at_the_next_beat(deal, make_participant):
    from campaigns.services import campaign_end

    group = open_at(deal, make_participant(), hours_ago(1), make_participant())
    campaign_end(campaign_id=deal.campaign_id)
    assert groups_close_due_task()["expired"] == 1
    group.refresh_from_db()
    assert group.status == "expired" and "as the campaign ended" in group.end_note
    assert Signal.objects.filter(group=group, kind="refund").count() == 2


def test_cancelling_twice_releases_and_refunds_once(deal, make_participant):
    group = open_at(deal, make_participant(), hours_ago(1), make_participant())
    services.group_cancel(group_id=group.pk, by="olga")
    again = services.group_cancel(group_id=group.pk, by="olga")
    assert again.status == "cancelled" and again.end_note == "cancelled by olga"
    assert Signal.objects.filter(group=group, kind="refund").count() == 2
    assert Event.objects.filter(name="group_cancelled").count() == 1
