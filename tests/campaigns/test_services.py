import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, CampaignTransition
from config.errors import ConflictError

S = Campaign.Status


def snapshot(campaign: Campaign) -> tuple:
    campaign.refresh_from_db()
    return (campaign.status, campaign.status_changed_at, campaign.updated_at, campaign.transitions.count())


def test_launch_inside_window_goes_live_and_records_who(make_campaign, ops):
    # given a draft whose window is open
    campaign = make_campaign()
    # when
    services.campaign_launch(campaign_id=campaign.pk, by=ops)
    # then
    campaign.refresh_from_db()
    assert campaign.status == S.LIVE
    assert campaign.status_changed_at is not None
    transition = campaign.transitions.get()
    assert (transition.from_status, transition.to_status, transition.by) == (S.DRAFT, S.LIVE, ops)


def test_launch_before_start_schedules(make_campaign, ops):
    campaign = make_campaign(
        starts_at=timezone.now() + timedelta(days=2), ends_at=timezone.now() + timedelta(days=5)
    )
    services.campaign_launch(campaign_id=campaign.pk, by=ops)
    campaign.refresh_from_db()
    assert campaign.status == S.SCHEDULED


def test_launch_called_twice_records_one_transition(make_campaign, ops):
    campaign = make_campaign()
    services.campaign_launch(campaign_id=campaign.pk, by=ops)
    before = snapshot(campaign)
    services.campaign_launch(campaign_id=campaign.pk, by=ops)
    assert snapshot(campaign) == before


def test_launch_after_end_is_refused_and_changes_nothing(make_campaign, ops):
    now = timezone.now()
    campaign = make_campaign(starts_at=now - timedelta(days=10), ends_at=now - timedelta(days=1))
    before = snapshot(campaign)
    with pytest.raises(ConflictError) as refused:
        services.campaign_launch(campaign_id=campaign.pk, by=ops)
    assert refused.value.code == "campaign_window_passed"
    assert "change its end time" in refused.value.message
    assert snapshot(campaign) == before


def test_pause_and_resume(make_campaign, ops):
    campaign = make_campaign()
    services.campaign_launch(campaign_id=campaign.pk, by=ops)
    services.campaign_pause(campaign_id=campaign.pk, by=ops)
    campaign.refresh_from_db()
    assert campaign.status == S.PAUSED
    services.campaign_pause(campaign_id=campaign.pk, by=ops)  # called twice: no second record
    services.campaign_launch(campaign_id=campaign.pk, by=ops)
    campaign.refresh_from_db()
    assert campaign.status == S.LIVE
    assert list(campaign.transitions.order_by("id").values_list("to_status", flat=True)) == [
        S.LIVE,
        S.PAUSED,
        S.LIVE,
    ]


def test_end_then_archive_and_each_twice(make_campaign, ops):
    campaign = make_campaign()
    services.campaign_launch(campaign_id=campaign.pk, by=ops)
    services.campaign_end(campaign_id=campaign.pk, by=ops)
    services.campaign_end(campaign_id=campaign.pk, by=ops)
    services.campaign_archive(campaign_id=campaign.pk, by=ops)
    services.campaign_archive(campaign_id=campaign.pk, by=ops)
    campaign.refresh_from_db()
    assert campaign.status == S.ARCHIVED
    assert campaign.transitions.count() == 3


@pytest.mark.parametrize(
    ("status", "service"),
    [
        (S.DRAFT, services.campaign_pause),
        (S.DRAFT, services.campaign_end),
        (S.DRAFT, services.campaign_archive),
        (S.SCHEDULED, services.campaign_pause),
        (S.SCHEDULED, services.campaign_archive),
        (S.LIVE, services.campaign_archive),
        (S.PAUSED, services.campaign_archive),
        (S.ENDED, services.campaign_launch),
        (S.ENDED, services.campaign_pause),
        (S.ARCHIVED, services.campaign_launch),
        (S.ARCHIVED, services.campaign_pause),
        (S.ARCHIVED, services.campaign_end),
    ],
)
def test_illegal_transition_is_refused_and_changes_nothing(make_campaign, ops, status, service):
    # given a campaign in `status` (set directly: the setup is not what is tested)
    campaign = make_campaign(status=status)
    before = snapshot(campaign)
    # when / then
    with pytest.raises(ConflictError) as refused:
        service(campaign_id=campaign.pk, by=ops)
    assert refused.value.code == "campaign_illegal_transition"
    assert campaign.name in refused.value.message
    assert snapshot(campaign) == before


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_launches_make_one_transition(make_campaign, ops):
    # given a draft, and eight ops clicks arriving at once
    campaign = make_campaign()
    barrier = threading.Barrier(8)
    errors = []

    def click():
        try:
            barrier.wait()
            services.campaign_launch(campaign_id=campaign.pk, by=ops)
        except Exception as exc:  # pragma: no cover - a failure shows up in the assert below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then the row lock let exactly one of them move it
    assert errors == []
    assert CampaignTransition.objects.filter(campaign=campaign).count() == 1
    campaign.refresh_from_db()
    assert campaign.status == S.LIVE


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_pause_racing_end_leaves_a_legal_history(make_campaign, ops):
    # given a live campaign that one manager pauses while another ends it
    campaign = make_campaign()
    services.campaign_launch(campaign_id=campaign.pk, by=ops)
    barrier = threading.Barrier(2)
    outcomes = []

    def run(service):
        try:
            barrier.wait()
            service(campaign_id=campaign.pk, by=ops)
            outcomes.append("ok")
        except ConflictError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(s,)) for s in (services.campaign_pause, services.campaign_end)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then it ends either way, and every recorded step was a legal one
    campaign.refresh_from_db()
    assert campaign.status == S.ENDED
    steps = list(campaign.transitions.order_by("id").values_list("from_status", "to_status"))
    for from_status, to_status in steps:
        assert to_status in services.ALLOWED[from_status]
    assert steps[-1][1] == S.ENDED
    assert sorted(outcomes) in (["ok", "ok"], ["campaign_illegal_transition", "ok"])
