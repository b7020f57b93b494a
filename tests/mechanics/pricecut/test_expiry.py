"""Price cuts past their time, handled by the beat task."""

from datetime import timedelta

import pytest
from django.utils import timezone

from config.errors import ConflictError
from mechanics.pricecut import services
from mechanics.pricecut.models import Task
from mechanics.pricecut.tasks import cut_tasks_expire_due_task
from referrals.models import Event, Reward

pytestmark = pytest.mark.django_db


def started_ago(offer, starter, hours):
    task, _ = services.cut_task_start(
        offer_id=offer.pk, starter=starter, now=timezone.now() - timedelta(hours=hours)
    )
    return task


def test_an_unfinished_task_expires_with_beat_and_takes_no_more_help(offer, make_participant):
    sue = make_participant()
    old = started_ago(offer, sue, 25)
    services.cut_task_help(
        task_code=old.code, helper=make_participant(), now=old.started_at + timedelta(hours=1)
    )
    fresh = started_ago(offer, make_participant(), 1)
    # a help after the deadline but before beat is refused and changes nothing
    with pytest.raises(ConflictError) as late:
        services.cut_task_help(task_code=old.code, helper=make_participant())
    assert late.value.code == "cut_task_expired"
    assert Task.objects.get(pk=old.pk).helper_count == 1
    # beat expires it, once
    assert cut_tasks_expire_due_task()["expired"] == 1
    old.refresh_from_db()
    assert old.status == "expired" and old.ended_at is not None and "2 helper(s) short" in old.end_note
    assert Task.objects.get(pk=fresh.pk).status == "open"
    assert Event.objects.filter(name="price_cut_expired", participant_id=sue.pk).count() == 1
    assert cut_tasks_expire_due_task()["expired"] == 0
    # the starter may start again, from the start price
    again, created = services.cut_task_start(offer_id=offer.pk, starter=sue)
    assert created and again.price_fen == offer.start_price_fen


def test_a_task_never_outlives_its_campaign(make_offer, make_participant, pc_campaign):
    pc_campaign.ends_at = timezone.now() + timedelta(hours=2)
    pc_campaign.save()
    task, _ = services.cut_task_start(offer_id=make_offer(hours=24).pk, starter=make_participant())
    assert task.expires_at == pc_campaign.ends_at


def test_the_sweep_resends_a_grant_a_lost_task_never_made(
    make_offer, make_participant, cut_rule, eager_tasks
):
    offer = make_offer(helpers_needed=1)
    task = started_ago(offer, make_participant(), 1)
    services.cut_task_help(
        task_code=task.code, helper=make_participant(), now=timezone.now() - timedelta(minutes=10)
    )
    assert not Reward.objects.exists()  # on_commit never ran: the grant task was "lost"
    assert cut_tasks_expire_due_task()["rewards_resent"] == 1
    assert Reward.objects.get().source == f"pricecut:{task.pk}"
    assert services.cut_rewards_sweep() == 0


def test_open_tasks_of_a_campaign_ended_early_expire_at_the_next_beat(offer, make_participant):
    from campaigns.services import campaign_end

    task = started_ago(offer, make_participant(), 1)
    campaign_end(campaign_id=offer.campaign_id)
    assert cut_tasks_expire_due_task()["expired"] == 1
    task.refresh_from_db()
    assert task.status == "expired" and "as the campaign ended" in task.end_note


def test_cancelling_twice_ends_the_task_once(offer, make_participant):
    task = started_ago(offer, make_participant(), 1)
    services.cut_task_cancel(task_id=task.pk, by="olga")
    assert services.cut_task_cancel(task_id=task.pk, by="olga").status == "cancelled"
    assert Event.objects.filter(name="price_cut_cancelled").count() == 1
    with pytest.raises(ConflictError) as refused:
        services.cut_task_help(task_code=task.code, helper=make_participant())
    assert refused.value.code == "cut_task_cancelled"
