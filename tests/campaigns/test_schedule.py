from datetime import timedelta

from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign

S = Campaign.Status


def test_sync_starts_due_campaigns_and_ends_finished_ones(make_campaign):
    # given
    now = timezone.now()
    due = make_campaign(
        status=S.SCHEDULED, starts_at=now - timedelta(minutes=1), ends_at=now + timedelta(days=1)
    )
    later = make_campaign(
        status=S.SCHEDULED, starts_at=now + timedelta(hours=1), ends_at=now + timedelta(days=1)
    )
    finished = make_campaign(
        status=S.LIVE, starts_at=now - timedelta(days=2), ends_at=now - timedelta(seconds=1)
    )
    paused_over = make_campaign(status=S.PAUSED, starts_at=now - timedelta(days=2), ends_at=now)
    running = make_campaign(status=S.LIVE)
    draft_over = make_campaign(
        status=S.DRAFT, starts_at=now - timedelta(days=2), ends_at=now - timedelta(days=1)
    )
    # when
    result = services.campaigns_sync_schedule(now=now)
    # then
    assert sorted(result["started"]) == [due.pk]
    assert sorted(result["ended"]) == sorted([finished.pk, paused_over.pk])
    statuses = {c.pk: c.status for c in Campaign.objects.all()}
    assert statuses == {
        due.pk: S.LIVE,
        later.pk: S.SCHEDULED,
        finished.pk: S.ENDED,
        paused_over.pk: S.ENDED,
        running.pk: S.LIVE,
        draft_over.pk: S.DRAFT,  # a draft was never launched: the scheduler leaves it alone
    }
    assert due.transitions.get().by is None
    assert finished.transitions.get().note == "ended on schedule"


def test_sync_run_twice_moves_each_campaign_once(make_campaign):
    now = timezone.now()
    make_campaign(status=S.SCHEDULED, starts_at=now - timedelta(minutes=1))
    make_campaign(status=S.LIVE, starts_at=now - timedelta(days=2), ends_at=now - timedelta(minutes=1))
    first = services.campaigns_sync_schedule(now=now)
    second = services.campaigns_sync_schedule(now=now)
    assert len(first["started"]) == 1 and len(first["ended"]) == 1
    assert second == {"started": [], "ended": [], "refused": []}
    assert sum(c.transitions.count() for c in Campaign.objects.all()) == 2


def test_scheduled_campaign_whose_whole_window_passed_is_ended(make_campaign):
    # e.g. beat was down for the whole (short) campaign
    now = timezone.now()
    campaign = make_campaign(
        status=S.SCHEDULED, starts_at=now - timedelta(hours=3), ends_at=now - timedelta(hours=1)
    )
    result = services.campaigns_sync_schedule(now=now)
    assert result == {"started": [], "ended": [campaign.pk], "refused": []}
    campaign.refresh_from_db()
    assert campaign.status == S.ENDED


def test_beat_schedule_runs_the_sync_task_every_half_minute():
    from django.conf import settings

    from config.settings import base

    entry = base.CELERY_BEAT_SCHEDULE["campaigns-sync-schedule"]
    assert entry["task"] == "campaigns.campaigns_sync_schedule"
    assert entry["schedule"] <= 60
    from config.celery import app

    app.loader.import_default_modules()  # what a worker does at start: autodiscovery
    assert "campaigns.campaigns_sync_schedule" in app.tasks
    assert settings.CELERY_TASK_DEFAULT_QUEUE == "fission-tests"
