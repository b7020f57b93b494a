"""Scheduled daily reports: one job per schedule and local day, whatever the beat does."""

import threading
from datetime import UTC, date, datetime, time

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from reports.models import ExportJob, ScheduledReport
from reports.services import scheduled_reports_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def daily_events(live_campaign, ops):
    """Yesterday's events at 08:00 Shanghai time, every day."""
    schedule = ScheduledReport.objects.create(
        name="Yesterday's events",
        report="events",
        parameters={"campaign": live_campaign.pk, "date_from": "yesterday", "date_to": "yesterday"},
        format="csv",
        time_of_day=time(8, 0),
        time_zone="Asia/Shanghai",
        created_by=ops,
    )
    schedule.recipients.add(ops)
    return schedule


def at(year, month, day, hour, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_repeated_beats_queue_the_days_report_once(daily_events):
    # given it is 08:00:30 in Shanghai on 2027-02-03 (00:00:30 UTC)
    # when the beat runs ten times over the next minutes
    created = [scheduled_reports_run(now=at(2027, 2, 3, 0, minute)) for minute in range(10)]
    # then exactly one job, for that local day, with yesterday resolved
    jobs = ExportJob.objects.filter(schedule=daily_events)
    assert jobs.count() == 1
    job = jobs.get()
    assert created[0] == [job.pk] and all(c == [] for c in created[1:])
    assert job.scheduled_for == date(2027, 2, 3)
    assert job.parameters["date_from"] == job.parameters["date_to"] == "2027-02-02"
    assert job.requester == daily_events.created_by
    assert job.format == "csv"


def test_nothing_before_the_local_time_of_day_and_a_new_job_the_next_day(daily_events):
    # 07:59 in Shanghai: not yet
    assert scheduled_reports_run(now=at(2027, 2, 2, 23, 59)) == []
    # 08:00: the day's job
    assert len(scheduled_reports_run(now=at(2027, 2, 3, 0, 0))) == 1
    # later that local day (23:59 Shanghai = 15:59 UTC): nothing more
    assert scheduled_reports_run(now=at(2027, 2, 3, 15, 59)) == []
    # the next local day, after 08:00: the next job
    assert len(scheduled_reports_run(now=at(2027, 2, 4, 1, 0))) == 1
    days = sorted(ExportJob.objects.values_list("scheduled_for", flat=True))
    assert days == [date(2027, 2, 3), date(2027, 2, 4)]


def test_inactive_schedules_write_nothing(daily_events):
    daily_events.is_active = False
    daily_events.save()
    assert scheduled_reports_run(now=at(2027, 2, 3, 3)) == []
    assert not ExportJob.objects.exists()


def test_the_database_refuses_a_second_job_for_the_same_day(daily_events):
    scheduled_reports_run(now=at(2027, 2, 3, 3))
    with pytest.raises(IntegrityError), transaction.atomic():
        ExportJob.objects.create(report="events", schedule=daily_events, scheduled_for=date(2027, 2, 3))


def test_a_schedule_whose_campaign_is_gone_gets_a_failed_job_with_the_reason(daily_events, live_campaign):
    with connection.cursor() as cursor:  # the row goes, whatever other apps hang on campaigns
        cursor.execute("DELETE FROM campaigns_campaign WHERE id = %s", [live_campaign.pk])
    for minute in range(3):
        scheduled_reports_run(now=at(2027, 2, 3, 1, minute))
    job = ExportJob.objects.get(schedule=daily_events)
    assert job.state == ExportJob.State.FAILED
    assert f"There is no campaign {live_campaign.pk}" in job.error


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_beats_at_once_queue_one_job(live_campaign, ops):
    # given a due schedule, and two beat processes (threads here) running at the same moment
    ScheduledReport.objects.create(
        name="Rewards",
        report="rewards",
        parameters={"campaign": live_campaign.pk},
        time_of_day=time(0, 0),
        time_zone="UTC",
    )
    barrier = threading.Barrier(2)
    results = []

    def beat():
        try:
            barrier.wait()
            results.append(scheduled_reports_run(now=at(2027, 2, 3, 9)))
        finally:
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then one job, queued by one of them
    assert ExportJob.objects.count() == 1
    assert sorted(len(r) for r in results) == [0, 1]


def test_the_beat_task_queues_due_schedules(daily_events):
    from reports.tasks import exports_beat_task

    result = exports_beat_task.apply().get()
    assert set(result) == {"scheduled", "requeued", "pruned"}
    due = timezone.now().astimezone(daily_events.tz).time() >= daily_events.time_of_day
    assert len(result["scheduled"]) == (1 if due else 0)
    assert ExportJob.objects.filter(schedule=daily_events).count() == (1 if due else 0)
