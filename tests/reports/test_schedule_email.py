"""Scheduled reports e-mail their recipients once per day's job: ready (with the admin link) or failed."""

import smtplib
import threading
import time as clock
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import connection
from django.urls import reverse

from referrals.models import Reward, RewardRule
from reports.models import ExportJob, ExportNotice, ScheduledReport
from reports.notify import export_job_notify
from reports.services import export_job_create, export_job_run, scheduled_reports_run
from reports.tasks import export_job_notify_task

pytestmark = pytest.mark.django_db

BASE = "https://fission.example.com"
# 08:00:30 in Shanghai on 2027-02-03
BEAT_AT = datetime(2027, 2, 3, 0, 0, 30, tzinfo=UTC)


def exporter(username: str, email: str, **fields) -> User:
    user = User.objects.create_user(
        username, email=email, password=f"pw-{username}-123", is_staff=True, **fields
    )
    user.groups.add(Group.objects.get(name="Campaign managers"))
    return user


@pytest.fixture(autouse=True)
def public_base_url(settings):
    settings.FISSION_PUBLIC_BASE_URL = BASE + "/"


@pytest.fixture
def olga(ops) -> User:
    ops.first_name, ops.last_name, ops.email = "Olga", "Petrova", "olga@example.com"
    ops.save()
    return ops


@pytest.fixture
def ann(db) -> User:
    return exporter("ann", "ann@example.com")


@pytest.fixture
def rewards_daily(live_campaign, olga, ann) -> ScheduledReport:
    """The rewards ledger of the cold-start campaign at 08:00 Shanghai time, for Olga and Ann."""
    schedule = ScheduledReport.objects.create(
        name="Morning rewards",
        report="rewards",
        parameters={"campaign": live_campaign.pk},
        format="csv",
        time_of_day=time(8, 0),
        time_zone="Asia/Shanghai",
        created_by=olga,
    )
    schedule.recipients.add(olga, ann)
    return schedule


@pytest.fixture
def one_reward(live_campaign, sharer) -> Reward:
    rule = RewardRule.objects.create(campaign=live_campaign, name="¥5", amount=Decimal("5.00"))
    return Reward.objects.create(
        rule=rule, campaign=live_campaign, beneficiary=sharer, source="s1", kind="cash", amount=Decimal("5")
    )


def run_the_beat(django_capture_on_commit_callbacks) -> ExportJob:
    """The beat queues the day's job; the worker writes it; the e-mail task runs (all in-process)."""
    with django_capture_on_commit_callbacks(execute=True):
        (job_id,) = scheduled_reports_run(now=BEAT_AT)
    return ExportJob.objects.get(pk=job_id)


def addressees(outbox) -> list[str]:
    return sorted(address for message in outbox for address in message.to)


def test_a_finished_scheduled_job_mails_each_recipient_once_with_the_download_link(
    rewards_daily,
    one_reward,
    live_campaign,
    olga,
    ann,
    eager_tasks,
    django_capture_on_commit_callbacks,
    mailoutbox,
    client,
):
    # when the beat queues the day's report and the worker writes it
    job = run_the_beat(django_capture_on_commit_callbacks)
    # then it is done, and each recipient got one e-mail
    assert job.state == ExportJob.State.DONE
    assert addressees(mailoutbox) == ["ann@example.com", "olga@example.com"]
    link = BASE + reverse("admin:reports_exportjob_download", args=[job.pk])
    for message in mailoutbox:
        # the subject names the report, the campaign and the schedule's local day
        assert message.subject == f"[Fission] Report ready: Rewards · {live_campaign.name} · 2027-02-03"
        # the link is the admin download, on the public address, with nothing secret in it
        assert link in message.body.split("\n")
        assert "?" not in link and "token" not in message.body.lower()
        assert message.attachments == []
        assert message.from_email
    to_olga = next(m for m in mailoutbox if m.to == ["olga@example.com"])
    assert to_olga.body.startswith("Hello Olga Petrova,")
    assert "1 rows, CSV" in to_olga.body
    # the job records who was told
    job.refresh_from_db()
    assert job.notified_at is not None
    assert sorted(job.notices.values_list("email", flat=True)) == ["ann@example.com", "olga@example.com"]
    # and the link works for a recipient who signs in
    client.force_login(ann)
    response = client.get(link.removeprefix(BASE))
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"\xef\xbb\xbf")


def test_running_the_notify_task_again_sends_nothing_more(
    rewards_daily, eager_tasks, django_capture_on_commit_callbacks, mailoutbox
):
    # given the day's job is written and its recipients e-mailed
    job = run_the_beat(django_capture_on_commit_callbacks)
    assert len(mailoutbox) == 2
    # when the task is delivered again, twice, and the service is called once more
    export_job_notify_task.delay(job.pk)
    export_job_notify_task.delay(job.pk)
    assert export_job_notify(job_id=job.pk) == 0
    # then nobody gets a second e-mail
    assert len(mailoutbox) == 2
    assert ExportNotice.objects.filter(job=job).count() == 2


def test_a_half_done_notice_run_mails_only_those_not_yet_mailed(rewards_daily, ann, mailoutbox):
    # given a done job whose notices were not finished (say the worker died after Olga's e-mail)
    job = ExportJob.objects.create(
        report="rewards",
        parameters=rewards_daily.parameters,
        format="csv",
        schedule=rewards_daily,
        scheduled_for=date(2027, 2, 3),
        state=ExportJob.State.DONE,
        file="2027/02/rewards-x.csv",
        finished_at=BEAT_AT,
    )
    olga = rewards_daily.recipients.get(username="olga")
    ExportNotice.objects.create(job=job, recipient=olga, email=olga.email)
    # when the task runs again
    assert export_job_notify(job_id=job.pk) == 1
    # then only Ann is e-mailed now
    assert addressees(mailoutbox) == ["ann@example.com"]


class SlowLocmemBackend(LocmemBackend):
    """The locmem outbox, with a mail server that takes a moment to answer: two workers overlap."""

    def send_messages(self, messages):
        clock.sleep(0.3)
        return super().send_messages(messages)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_workers_at_once_send_each_recipient_one_email(rewards_daily, settings, mailoutbox):
    # given a done scheduled job (committed: the threads use their own connections)
    settings.EMAIL_BACKEND = f"{__name__}.SlowLocmemBackend"
    job = ExportJob.objects.create(
        report="rewards",
        parameters=rewards_daily.parameters,
        format="csv",
        schedule=rewards_daily,
        scheduled_for=date(2027, 2, 3),
        state=ExportJob.State.DONE,
        file="2027/02/rewards-x.csv",
        finished_at=BEAT_AT,
    )
    barrier = threading.Barrier(2)
    sent, errors = [], []

    def worker():
        try:
            barrier.wait()
            sent.append(export_job_notify(job_id=job.pk))
        except Exception as exc:  # pragma: no cover - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    # when two workers run the task for it at the same time
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # then each recipient got exactly one e-mail between them
    assert errors == []
    assert sum(sent) == 2
    assert addressees(mailoutbox) == ["ann@example.com", "olga@example.com"]
    assert ExportNotice.objects.filter(job=job).count() == 2
    job.refresh_from_db()
    assert job.notified_at is not None


def test_a_failed_scheduled_job_mails_the_failure_once(
    rewards_daily, live_campaign, eager_tasks, django_capture_on_commit_callbacks, mailoutbox
):
    # given the schedule's campaign is deleted
    with connection.cursor() as cursor:  # the row goes, whatever other apps hang on campaigns
        cursor.execute("DELETE FROM campaigns_campaign WHERE id = %s", [live_campaign.pk])
    # when the beat runs (twice) on the day
    job = run_the_beat(django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        scheduled_reports_run(now=BEAT_AT)
    # then the day's job failed with the reason, and each recipient was told once
    assert job.state == ExportJob.State.FAILED
    assert addressees(mailoutbox) == ["ann@example.com", "olga@example.com"]
    for message in mailoutbox:
        assert (
            message.subject
            == f"[Fission] Report failed: Rewards · campaign {live_campaign.pk} (deleted) · 2027-02-03"
        )
        assert job.error and job.error in message.body
        assert BASE + reverse("admin:reports_exportjob_change", args=[job.pk]) in message.body
    assert export_job_notify(job_id=job.pk) == 0
    assert len(mailoutbox) == 2


def test_a_job_that_fails_in_the_worker_mails_the_failure(
    rewards_daily, live_campaign, eager_tasks, django_capture_on_commit_callbacks, mailoutbox
):
    # given the day's job is queued (not yet written) and then its campaign is deleted
    with django_capture_on_commit_callbacks(execute=False):
        (job_id,) = scheduled_reports_run(now=BEAT_AT)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM campaigns_campaign WHERE id = %s", [live_campaign.pk])
    # when the worker runs it
    with django_capture_on_commit_callbacks(execute=True):
        job = export_job_run(job_id=job_id)
    # then it failed and the recipients were told why
    assert job.state == ExportJob.State.FAILED
    assert addressees(mailoutbox) == ["ann@example.com", "olga@example.com"]
    assert all("failed" in m.subject and job.error in m.body for m in mailoutbox)


def test_a_recipient_without_an_email_address_is_skipped(
    rewards_daily, eager_tasks, django_capture_on_commit_callbacks, mailoutbox
):
    # given a third recipient with no e-mail address (and one with only blanks)
    rewards_daily.recipients.add(exporter("sid", ""), exporter("sue", "   "))
    # when the day's job is written
    run_the_beat(django_capture_on_commit_callbacks)
    # then only those with an address are e-mailed, and the job counts as notified
    assert addressees(mailoutbox) == ["ann@example.com", "olga@example.com"]
    assert ExportJob.objects.get().notified_at is not None


def test_an_inactive_recipient_is_skipped(
    rewards_daily, ann, eager_tasks, django_capture_on_commit_callbacks, mailoutbox
):
    # given Ann has left (inactive, her address still on file)
    ann.is_active = False
    ann.save()
    # when the day's job is written
    run_the_beat(django_capture_on_commit_callbacks)
    # then only Olga is e-mailed
    assert addressees(mailoutbox) == ["olga@example.com"]


def test_ad_hoc_exports_mail_nobody(
    live_campaign, olga, eager_tasks, django_capture_on_commit_callbacks, mailoutbox
):
    # when Olga queues an export herself and the worker writes it
    with django_capture_on_commit_callbacks(execute=True):
        job = export_job_create(
            report="rewards", parameters={"campaign": live_campaign.pk}, format="csv", requester=olga
        )
    job.refresh_from_db()
    assert job.state == ExportJob.State.DONE
    # then no e-mail is sent, even when the task is asked to
    assert export_job_notify(job_id=job.pk) == 0
    assert mailoutbox == []
    assert job.notified_at is None


class FlakyBackend(LocmemBackend):
    """A mail server that drops the connection on the first message it is given, then works."""

    failures_left = 1

    def send_messages(self, messages):
        if FlakyBackend.failures_left:
            FlakyBackend.failures_left -= 1
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return super().send_messages(messages)


def test_a_mail_server_failure_is_retried_and_never_fails_the_export(
    rewards_daily, settings, eager_tasks, django_capture_on_commit_callbacks, mailoutbox, caplog
):
    # given a mail server that fails once
    settings.EMAIL_BACKEND = f"{__name__}.FlakyBackend"
    settings.EMAIL_HOST_PASSWORD = "smtp-pass-do-not-log"
    FlakyBackend.failures_left = 1
    # when the day's job is written and the task e-mails its recipients
    job = run_the_beat(django_capture_on_commit_callbacks)
    # then the export is done, the failed e-mail was retried, and nobody got two
    assert job.state == ExportJob.State.DONE and job.error == ""
    assert FlakyBackend.failures_left == 0
    assert addressees(mailoutbox) == ["ann@example.com", "olga@example.com"]
    job.refresh_from_db()
    assert job.notified_at is not None
    assert "not sent" in caplog.text
    assert "smtp-pass-do-not-log" not in caplog.text


def test_the_schedule_form_says_who_is_emailed_and_warns_about_missing_addresses(admin_client, rewards_daily):
    # given a recipient without an e-mail address and one who left
    rewards_daily.recipients.add(exporter("sid", ""), exporter("bob", "bob@example.com", is_active=False))
    # when a manager opens the schedule
    page = admin_client.get(reverse("admin:reports_scheduledreport_change", args=[rewards_daily.pk]))
    text = page.content.decode()
    # then it names who is e-mailed, and warns about the others in words
    assert page.status_code == 200
    assert "e-mailed to: ann &lt;ann@example.com&gt;, Olga Petrova &lt;olga@example.com&gt;." in text
    assert "<strong>sid</strong> (no e-mail address)" in text
    assert "<strong>bob</strong> (inactive)" in text


def test_saving_a_schedule_warns_about_recipients_without_an_address(admin_client, live_campaign, olga):
    # when a schedule is saved with a recipient who has no e-mail address
    sid = exporter("sid", "")
    response = admin_client.post(
        reverse("admin:reports_scheduledreport_add"),
        {
            "name": "Morning rewards",
            "report": "rewards",
            "parameters": f'{{"campaign": {live_campaign.pk}}}',
            "format": "csv",
            "time_of_day": "08:00",
            "time_zone": "Asia/Shanghai",
            "recipients": [olga.pk, sid.pk],
            "is_active": "on",
        },
        follow=True,
    )
    # then it is saved and the messages say who will and will not be e-mailed
    assert response.status_code == 200
    assert ScheduledReport.objects.filter(name="Morning rewards").exists()
    notes = [str(m) for m in response.context["messages"]]
    assert any("will be e-mailed to: Olga Petrova <olga@example.com>" in n for n in notes), notes
    assert any("Not e-mailed" in n and "sid: no e-mail address" in n for n in notes), notes
