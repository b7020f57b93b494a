"""Running a job: once only, failures recorded on the row, never a half-written file."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from config.errors import ApplicationError
from reports import registry
from reports.models import ExportJob
from reports.registry import Column, Report
from reports.services import export_job_create, export_job_run, export_jobs_requeue_stuck

from .conftest import csv_rows, files_under

pytestmark = pytest.mark.django_db


@pytest.fixture
def breaking_report():
    """A report that writes rows and then breaks, as a report with a bug would."""

    def rows(params, context):
        for i in range(5000):
            yield (i, "x" * 50)
        raise RuntimeError("the selector broke")

    registry.report_list()  # the catalog first, so this one does not stop it loading
    report = registry.register(
        Report(
            name="breaks_midway",
            title="Breaks midway",
            description="",
            params=(),
            columns=(Column("n", "int"), Column("text")),
            rows=rows,
        )
    )
    yield report
    registry._REGISTRY.pop(report.name)


def test_a_deleted_campaign_fails_the_job_with_the_reason_and_no_file(make_campaign, ops, exports_root):
    # given an export queued for a campaign that is deleted before a worker takes it
    campaign = make_campaign()
    job = export_job_create(
        report="rewards", parameters={"campaign": campaign.pk}, format="xlsx", requester=ops
    )
    with connection.cursor() as cursor:  # the row goes, whatever other apps hang on campaigns
        cursor.execute("DELETE FROM campaigns_campaign WHERE id = %s", [campaign.pk])
    # when the worker runs it
    job = export_job_run(job_id=job.pk)
    # then it failed, says why, and left no file at all
    assert job.state == ExportJob.State.FAILED
    assert f"There is no campaign {campaign.pk}" in job.error
    assert not job.file
    assert job.finished_at is not None
    assert files_under(exports_root) == []


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_report_breaking_midway_leaves_no_half_file(breaking_report, ops, exports_root, fmt):
    # given a job whose report raises after 5,000 rows
    job = export_job_create(report="breaks_midway", parameters={}, format=fmt, requester=ops)
    # when it runs
    job = export_job_run(job_id=job.pk)
    # then the job failed with the error, and nothing of the partial file remains
    assert job.state == ExportJob.State.FAILED
    assert job.error == "RuntimeError: the selector broke"
    assert not job.file
    assert files_under(exports_root) == []


def test_parameters_are_refused_before_anything_is_queued(live_campaign, ops):
    with pytest.raises(ApplicationError) as refused:
        export_job_create(
            report="events",
            parameters={"campaign": live_campaign.pk, "date_from": "2027-02-05", "date_to": "2027-02-03"},
            format="csv",
            requester=ops,
        )
    assert refused.value.fields == {"date_to": "Must not be before the start date."}
    with pytest.raises(ApplicationError) as refused:
        export_job_create(report="no_such_report", parameters={}, format="csv", requester=ops)
    assert refused.value.code == "report_unknown"
    with pytest.raises(ApplicationError):
        export_job_create(
            report="rewards", parameters={"campaign": live_campaign.pk}, format="pdf", requester=ops
        )
    assert not ExportJob.objects.exists()


def test_a_second_delivery_does_not_run_the_job_again(live_campaign, ops, exports_root):
    # given a job that ran
    job = export_job_create(
        report="rewards", parameters={"campaign": live_campaign.pk}, format="csv", requester=ops
    )
    first = export_job_run(job_id=job.pk)
    assert first.state == ExportJob.State.DONE
    # when the task is delivered again
    again = export_job_run(job_id=job.pk)
    # then nothing happens: same file, one attempt, one file on disk
    assert again is None
    job.refresh_from_db()
    assert job.file.name == first.file.name
    assert job.attempts == 1
    assert len(files_under(exports_root)) == 1


def test_a_running_job_with_a_live_heartbeat_is_left_alone(live_campaign, ops):
    job = export_job_create(
        report="rewards", parameters={"campaign": live_campaign.pk}, format="csv", requester=ops
    )
    ExportJob.objects.filter(pk=job.pk).update(state="running", attempts=1, heartbeat_at=timezone.now())
    assert export_job_run(job_id=job.pk) is None
    job.refresh_from_db()
    assert (job.state, job.attempts) == ("running", 1)


def test_a_job_whose_worker_died_is_sent_again_and_runs(live_campaign, ops):
    # given a job "running" whose heartbeat stopped 11 minutes ago (its worker was killed)
    job = export_job_create(
        report="rewards", parameters={"campaign": live_campaign.pk}, format="csv", requester=ops
    )
    stale = timezone.now() - timedelta(minutes=11)
    ExportJob.objects.filter(pk=job.pk).update(state="running", attempts=1, heartbeat_at=stale)
    # when the beat looks for stuck jobs, it names it; and a worker then claims and runs it
    from config.celery import app

    app.conf.task_always_eager = True
    try:
        assert export_jobs_requeue_stuck() == [job.pk]
    finally:
        app.conf.task_always_eager = False
    job.refresh_from_db()
    assert job.state == ExportJob.State.DONE
    assert job.attempts == 2
    assert csv_rows(job)[0][0] == "id"


def test_rows_and_progress_are_recorded(live_campaign, ops, make_participant):
    # given 3 rewards
    from decimal import Decimal

    from referrals.models import Reward, RewardRule

    rule = RewardRule.objects.create(campaign=live_campaign, name="r", amount=Decimal("1.00"))
    for n in range(3):
        Reward.objects.create(
            rule=rule,
            campaign=live_campaign,
            beneficiary=make_participant(),
            source=f"s{n}",
            kind="cash",
            amount=Decimal("1.00"),
        )
    job = export_job_create(
        report="rewards", parameters={"campaign": live_campaign.pk}, format="xlsx", requester=ops
    )
    job = export_job_run(job_id=job.pk)
    assert (job.state, job.progress, job.row_count) == ("done", 100, 3)
    assert job.file_size > 0
    assert job.filename == f"rewards-campaign-{live_campaign.pk}-{job.finished_at:%Y-%m-%d}-{job.pk}.xlsx"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_progress_is_visible_to_others_while_the_job_runs(ops):
    """The export reads in one long transaction; its progress must still reach the admin."""
    seen = {}

    def rows(params, context):
        for i in range(12_000):
            if i == 6_000:  # the progress at 5,000 rows was written: look from another connection
                other = connection.get_new_connection(connection.get_connection_params())
                try:
                    seen["row"] = other.execute(
                        "SELECT state, row_count, heartbeat_at IS NOT NULL FROM reports_exportjob"
                    ).fetchone()
                finally:
                    other.close()
            yield (i,)

    registry.report_list()
    registry.register(
        Report(
            name="slow_count",
            title="Count",
            description="",
            params=(),
            columns=(Column("n", "int"),),
            rows=rows,
        )
    )
    try:
        job = export_job_create(report="slow_count", parameters={}, format="csv", requester=ops)
        job = export_job_run(job_id=job.pk)
    finally:
        registry._REGISTRY.pop("slow_count")
    assert job.state == "done" and job.row_count == 12_000
    assert seen["row"] == ("running", 5_000, True)


def test_a_lost_queued_job_is_sent_again_once_per_five_minutes(live_campaign, ops):
    from config.celery import app

    job = export_job_create(
        report="rewards", parameters={"campaign": live_campaign.pk}, format="csv", requester=ops
    )
    queued_at = timezone.now()
    app.conf.task_always_eager = True
    try:
        # queued a minute ago: not lost
        assert export_jobs_requeue_stuck(now=queued_at + timedelta(minutes=1)) == []
        # queued six minutes ago, and already sent again a minute ago: not again yet
        ExportJob.objects.filter(pk=job.pk).update(
            created_at=queued_at - timedelta(minutes=6), heartbeat_at=queued_at - timedelta(minutes=1)
        )
        assert export_jobs_requeue_stuck(now=queued_at) == []
        # five minutes after that: sent again (and run, eagerly here)
        assert export_jobs_requeue_stuck(now=queued_at + timedelta(minutes=5)) == [job.pk]
    finally:
        app.conf.task_always_eager = False
    job.refresh_from_db()
    assert job.state == ExportJob.State.DONE


def test_old_exports_and_partial_files_of_dead_workers_are_pruned(
    live_campaign, ops, exports_root, django_capture_on_commit_callbacks
):
    from reports.services import export_files_prune

    # given an export finished 31 days ago, one from yesterday, a running job writing its
    # partial file, and a partial file a killed worker left behind
    old, recent = (
        export_job_run(
            job_id=export_job_create(
                report="rewards", parameters={"campaign": live_campaign.pk}, format="csv", requester=ops
            ).pk
        )
        for _ in range(2)
    )
    now = timezone.now()
    ExportJob.objects.filter(pk=old.pk).update(finished_at=now - timedelta(days=31))
    ExportJob.objects.filter(pk=recent.pk).update(finished_at=now - timedelta(days=1))
    running = export_job_create(
        report="rewards", parameters={"campaign": live_campaign.pk}, format="csv", requester=ops
    )
    ExportJob.objects.filter(pk=running.pk).update(state="running", attempts=1, heartbeat_at=now)
    partial = exports_root / ".partial"
    (partial / f"{running.pk}-aaaa.part").write_bytes(b"being written")
    (partial / "999999-bbbb.part").write_bytes(b"left behind")
    # when the beat prunes
    with django_capture_on_commit_callbacks(execute=True):
        result = export_files_prune(now=now)
    # then the old export and the orphan are gone, the rest stays
    assert result == {"deleted_jobs": 1, "partial_files": 1}
    assert set(ExportJob.objects.values_list("pk", flat=True)) == {recent.pk, running.pk}
    assert sorted(p.name for p in files_under(exports_root)) == sorted(
        [recent.file.name.rsplit("/", 1)[1], f"{running.pk}-aaaa.part"]
    )
