import time
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.tasks import campaigns_sync_schedule_task

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_worker_takes_a_scheduled_campaign_live_through_the_broker(make_campaign, celery_worker_process):
    # given a scheduled campaign whose start has passed, and a real worker on the real broker
    _, worker_log = celery_worker_process
    now = timezone.now()
    due = make_campaign(status=Campaign.Status.SCHEDULED, starts_at=now - timedelta(seconds=5))
    over = make_campaign(
        status=Campaign.Status.LIVE, starts_at=now - timedelta(days=1), ends_at=now - timedelta(seconds=1)
    )
    # when the beat task is sent as beat sends it
    campaigns_sync_schedule_task.delay()
    # then the worker moves both, in the database this test reads
    assert wait_for(lambda: Campaign.objects.get(pk=over.pk).status == Campaign.Status.ENDED), (
        worker_log.read_text()
    )
    assert Campaign.objects.get(pk=due.pk).status == Campaign.Status.LIVE
    assert "campaigns.campaigns_sync_schedule" in worker_log.read_text()
    # and a redelivery of the same task changes nothing more
    campaigns_sync_schedule_task.delay()
    assert wait_for(lambda: worker_log.read_text().count("succeeded") >= 2), worker_log.read_text()
    assert Campaign.objects.get(pk=due.pk).transitions.count() == 1
    assert Campaign.objects.get(pk=over.pk).transitions.count() == 1
