"""Who may export, see and download what; the admin's add-export form, progress bar and status."""

import json

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from reports.models import ExportJob, ScheduledReport
from reports.services import export_job_create, export_job_run

from .conftest import csv_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def olgas_export(live_campaign, ops) -> ExportJob:
    job = export_job_create(
        report="rewards", parameters={"campaign": live_campaign.pk}, format="csv", requester=ops
    )
    return export_job_run(job_id=job.pk)


def download_url(job) -> str:
    return reverse("admin:reports_exportjob_download", args=[job.pk])


def test_the_requester_downloads_the_file_as_an_attachment(client, ops, olgas_export):
    client.force_login(ops)
    response = client.get(download_url(olgas_export))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert olgas_export.filename in response["Content-Disposition"]
    assert "private" in response["Cache-Control"] and "no-store" in response["Cache-Control"]
    assert b"".join(response.streaming_content).startswith(b"\xef\xbb\xbfid,")


def test_other_staff_cannot_download_or_see_someone_elses_export(client, stranger, olgas_export):
    client.force_login(stranger)
    assert client.get(download_url(olgas_export)).status_code == 404
    assert client.get(reverse("admin:reports_exportjob_change", args=[olgas_export.pk])).status_code == 302
    page = client.get(reverse("admin:reports_exportjob_changelist")).content.decode()
    assert download_url(olgas_export) not in page
    status = client.get(reverse("admin:reports_exportjob_status"), {"ids": str(olgas_export.pk)}).json()
    assert status == {"jobs": []}


def test_non_staff_and_anonymous_users_get_no_file(client, olgas_export):
    # anonymous: to the login page
    response = client.get(download_url(olgas_export))
    assert response.status_code == 302 and "/login/" in response["Location"]
    # a logged-in user who is not staff: the same
    client.force_login(User.objects.create_user("mallory"))
    response = client.get(download_url(olgas_export))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_staff_without_the_export_permission_get_nothing(client, olgas_export):
    user = User.objects.create_user("finn", is_staff=True)
    client.force_login(user)
    assert client.get(download_url(olgas_export)).status_code == 404
    assert client.get(reverse("admin:reports_exportjob_changelist")).status_code == 403
    assert client.get(reverse("admin:reports_exportjob_add")).status_code == 403


def test_view_all_permission_sees_and_downloads_everyones(client, stranger, olgas_export):
    stranger.user_permissions.add(Permission.objects.get(codename="view_all_exportjob"))
    stranger = User.objects.get(pk=stranger.pk)  # permissions are cached per user object
    client.force_login(stranger)
    assert client.get(download_url(olgas_export)).status_code == 200
    assert (
        download_url(olgas_export)
        in client.get(reverse("admin:reports_exportjob_changelist")).content.decode()
    )


def test_recipients_of_a_schedule_download_its_files(client, stranger, ops, live_campaign):
    from datetime import date, time

    schedule = ScheduledReport.objects.create(
        name="Daily rewards", report="rewards", parameters={"campaign": live_campaign.pk}, time_of_day=time(8)
    )
    schedule.recipients.add(stranger)
    job = export_job_create(
        report="rewards",
        parameters={"campaign": live_campaign.pk},
        format="csv",
        requester=ops,
        schedule=schedule,
        scheduled_for=date(2027, 2, 3),
    )
    job = export_job_run(job_id=job.pk)
    client.force_login(stranger)
    assert client.get(download_url(job)).status_code == 200


def test_a_job_without_a_file_yet_has_no_download(client, ops, live_campaign):
    job = export_job_create(
        report="rewards", parameters={"campaign": live_campaign.pk}, format="csv", requester=ops
    )
    client.force_login(ops)
    assert client.get(download_url(job)).status_code == 404


def test_analyst_exports_through_the_admin_form_and_the_worker_writes_it(
    client, analyst, live_campaign, django_capture_on_commit_callbacks
):
    from config.celery import app

    client.force_login(analyst)
    # the report list, then the chosen report's form
    choose = client.get(reverse("admin:reports_exportjob_add"))
    assert choose.status_code == 200 and "?report=events" in choose.content.decode()
    form = client.get(reverse("admin:reports_exportjob_add"), {"report": "rewards"})
    assert form.status_code == 200 and 'name="campaign"' in form.content.decode()
    # posting it queues a job, and the worker (eager here) is told once the row is committed
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = client.post(
                reverse("admin:reports_exportjob_add") + "?report=rewards",
                {
                    "report": "rewards",
                    "campaign": live_campaign.pk,
                    "states": ["held", "paid"],
                    "format": "csv",
                },
            )
    finally:
        app.conf.task_always_eager = False
    assert response.status_code == 302, response.content.decode()
    assert len(callbacks) == 1
    job = ExportJob.objects.get()
    assert (job.requester, job.report, job.parameters) == (
        analyst,
        "rewards",
        {"campaign": live_campaign.pk, "states": ["held", "paid"]},
    )
    assert job.state == ExportJob.State.DONE
    assert csv_rows(job) == [csv_rows(job)[0]]  # no rewards yet: the header only
    # and the list shows a download link
    page = client.get(reverse("admin:reports_exportjob_changelist")).content.decode()
    assert download_url(job) in page


def test_the_form_shows_the_registrys_refusal(client, ops, live_campaign):
    client.force_login(ops)
    response = client.post(
        reverse("admin:reports_exportjob_add") + "?report=events",
        {
            "report": "events",
            "campaign": live_campaign.pk,
            "date_from": "2027-02-05",
            "date_to": "2027-02-03",
            "format": "csv",
        },
    )
    assert response.status_code == 200
    assert "Must not be before the start date." in response.content.decode()
    assert not ExportJob.objects.exists()


def test_a_running_job_shows_a_progress_bar_and_the_status_endpoint_feeds_it(client, ops, live_campaign):
    job = export_job_create(
        report="rewards", parameters={"campaign": live_campaign.pk}, format="csv", requester=ops
    )
    ExportJob.objects.filter(pk=job.pk).update(state="running", progress=42, row_count=420)
    client.force_login(ops)
    page = client.get(reverse("admin:reports_exportjob_changelist")).content.decode()
    assert f'data-job="{job.pk}"' in page and 'value="42"' in page
    assert "reports/export_progress.js" in page
    status = client.get(reverse("admin:reports_exportjob_status"), {"ids": f"{job.pk},999999"}).json()
    assert status == {
        "jobs": [
            {
                "id": job.pk,
                "state": "running",
                "progress": 42,
                "row_count": 420,
                "error": "",
                "download_url": None,
            }
        ]
    }


def test_a_failed_job_shows_its_error_on_the_row(client, ops, live_campaign):
    job = export_job_create(
        report="rewards", parameters={"campaign": live_campaign.pk}, format="csv", requester=ops
    )
    ExportJob.objects.filter(pk=job.pk).update(state="failed", error="Campaign 3 no longer exists.")
    client.force_login(ops)
    page = client.get(reverse("admin:reports_exportjob_changelist")).content.decode()
    assert "Failed: Campaign 3 no longer exists." in page


def test_deleting_a_job_deletes_its_file(
    client, ops, olgas_export, exports_root, django_capture_on_commit_callbacks
):
    from .conftest import files_under

    assert len(files_under(exports_root)) == 1
    client.force_login(ops)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:reports_exportjob_delete", args=[olgas_export.pk]), {"post": "yes"}
        )
    assert response.status_code == 302
    assert not ExportJob.objects.exists()
    assert files_under(exports_root) == []


def test_export_files_have_no_public_url(olgas_export, settings):
    with pytest.raises(ValueError, match="no public URL"):
        olgas_export.file.url  # noqa: B018
    assert not olgas_export.file.path.startswith(str(settings.MEDIA_ROOT))


def test_changelist_queries_do_not_grow_with_jobs(client, ops, live_campaign, django_assert_max_num_queries):
    for _ in range(3):
        export_job_create(
            report="rewards", parameters={"campaign": live_campaign.pk}, format="csv", requester=ops
        )
    client.force_login(ops)
    url = reverse("admin:reports_exportjob_changelist")
    client.get(url)
    with django_assert_max_num_queries(12) as few:
        client.get(url)
    for _ in range(10):
        export_job_create(
            report="rewards", parameters={"campaign": live_campaign.pk}, format="csv", requester=ops
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(url).status_code == 200


def test_schedule_admin_validates_parameters(client, ops, live_campaign):
    client.force_login(ops)
    url = reverse("admin:reports_scheduledreport_add")
    assert client.get(url).status_code == 200
    bad = client.post(
        url,
        {
            "name": "Daily events",
            "report": "events",
            "parameters": json.dumps({"campaign": live_campaign.pk, "date_from": "someday"}),
            "format": "csv",
            "time_of_day": "08:00",
            "time_zone": "Asia/Shanghai",
            "is_active": "on",
        },
    )
    assert bad.status_code == 200
    assert "Not a date" in bad.content.decode()
    good = client.post(
        url,
        {
            "name": "Daily events",
            "report": "events",
            "parameters": json.dumps(
                {"campaign": live_campaign.pk, "date_from": "yesterday", "date_to": "yesterday"}
            ),
            "format": "csv",
            "time_of_day": "08:00",
            "time_zone": "Asia/Shanghai",
            "recipients": [ops.pk],
            "is_active": "on",
        },
    )
    assert good.status_code == 302, good.content.decode()
    schedule = ScheduledReport.objects.get()
    assert schedule.created_by == ops
    assert list(schedule.recipients.all()) == [ops]


@pytest.mark.parametrize(
    "report",
    [
        *["events", "rewards", "fraud_cases", "payouts", "participants"],
        *["funnel", "funnel_dropoffs", "retention", "kfactor", "sharers", "channels"],
    ],
)
def test_every_reports_form_loads(client, analyst, report):
    client.force_login(analyst)
    response = client.get(reverse("admin:reports_exportjob_add"), {"report": report})
    assert response.status_code == 200
    assert 'name="format"' in response.content.decode()


def test_a_jobs_page_shows_its_outcome(client, ops, olgas_export):
    client.force_login(ops)
    page = client.get(reverse("admin:reports_exportjob_change", args=[olgas_export.pk])).content.decode()
    assert download_url(olgas_export) in page
    assert "Campaign managers" not in page  # nothing about other users leaks onto it


def test_the_schedule_list_shows_the_last_days_job(client, ops, live_campaign):
    from datetime import time

    from reports.services import scheduled_reports_run

    ScheduledReport.objects.create(
        name="Rewards daily", report="rewards", parameters={"campaign": live_campaign.pk}, time_of_day=time(0)
    )
    scheduled_reports_run()
    client.force_login(ops)
    page = client.get(reverse("admin:reports_scheduledreport_changelist")).content.decode()
    assert "Rewards daily" in page and "Queued" in page
