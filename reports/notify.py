"""E-mail to a scheduled report's recipients when the day's job is done (or failed).

Sent by a Celery task after the job's outcome is committed (reports.tasks), never inside the
export. Each recipient gets one e-mail per job, whatever retries and concurrent workers do:
an ExportNotice row (unique per job and recipient) is inserted in the transaction that sends
that e-mail. A second worker's insert waits on the first one's uncommitted row, then finds it
and sends nothing; an SMTP failure rolls the row back, so the retry sends it. The e-mail holds
a link to the permission-checked admin download (a sign-in, no token) and never the file.
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core import mail
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from config.errors import ApplicationError

from .models import ExportJob, ScheduledReport
from .registry import report_get

log = logging.getLogger(__name__)


class NoticeNotSent(Exception):
    """Some recipients could not be e-mailed (the mail server failed): the task retries."""


@dataclass(frozen=True)
class Recipients:
    """Who a schedule's e-mails go to, and who is left out and why (shown in the admin)."""

    mailed: list
    skipped: list[tuple[object, str]]


def schedule_recipients(schedule: ScheduledReport) -> Recipients:
    """The recipients who get the e-mail: active staff with an e-mail address who may open the
    link (the same rule as ExportJob.visible_to for a schedule's recipients)."""
    mailed, skipped = [], []
    for user in schedule.recipients.order_by("username"):
        if not user.is_active:
            skipped.append((user, "inactive"))
        elif not user.is_staff:
            skipped.append((user, "not staff, cannot sign in to the admin"))
        elif not user.has_perm("reports.view_exportjob"):
            skipped.append((user, "may not download exports (no “view export job” permission)"))
        elif not user.email.strip():
            skipped.append((user, "no e-mail address"))
        else:
            mailed.append(user)
    return Recipients(mailed=mailed, skipped=skipped)


def admin_url(name: str, *args) -> str:
    """An absolute link into the admin, on the public address (FISSION_PUBLIC_BASE_URL)."""
    return settings.FISSION_PUBLIC_BASE_URL.rstrip("/") + reverse(f"admin:{name}", args=args)


def _campaign_name(job: ExportJob) -> str:
    from campaigns.models import Campaign

    campaign_id = job.parameters.get("campaign")
    if campaign_id is None:
        return ""
    name = Campaign.objects.filter(pk=campaign_id).values_list("name", flat=True).first()
    return name or f"campaign {campaign_id} (deleted)"


def _one_line(text: str) -> str:
    # A header may not hold a line break (campaign names come from forms and the API).
    return " ".join(str(text).split())


def _keep_days() -> int:
    from .services import KEEP  # services sends this module's task: imported when used

    return KEEP.days


def message_for(job: ExportJob, user) -> mail.EmailMessage:
    schedule = job.schedule
    try:
        title = report_get(job.report).title
    except ApplicationError:
        title = job.report
    campaign = _campaign_name(job)
    day = job.scheduled_for.isoformat() if job.scheduled_for else f"{job.created_at:%Y-%m-%d}"
    what = " · ".join(part for part in (title, campaign, day) if part)
    greeting = f"Hello {user.get_full_name() or user.get_username()},"
    footer = (
        f"You get this e-mail as a recipient of the scheduled report “{schedule.name}” "
        "(Reports and exports → Scheduled reports in the admin)."
    )
    if job.state == ExportJob.State.DONE:
        subject = f"[Fission] Report ready: {what}"
        body = "\n".join(
            [
                greeting,
                "",
                f"the scheduled report “{schedule.name}” for {day} is ready:",
                "",
                f"  {what}",
                f"  {job.row_count:,} rows, {job.format.upper()}, {max(1, job.file_size // 1024):,} KB",
                "",
                "Download it (sign in to the admin with your own account):",
                admin_url("reports_exportjob_download", job.pk),
                "",
                f"The file is kept for {_keep_days()} days and is also in your list of exports.",
                "",
                footer,
            ]
        )
    else:
        subject = f"[Fission] Report failed: {what}"
        body = "\n".join(
            [
                greeting,
                "",
                f"the scheduled report “{schedule.name}” for {day} could not be written:",
                "",
                f"  {what}",
                f"  {job.error or 'no reason was recorded'}",
                "",
                "The export in the admin:",
                admin_url("reports_exportjob_change", job.pk),
                "",
                footer,
            ]
        )
    return mail.EmailMessage(subject=_one_line(subject), body=body, to=[user.email.strip()])


def _claim(job_id: int, user) -> bool:
    """Insert this recipient's notice row. A concurrent insert of the same row waits for the
    other transaction: it sends nothing if that one committed, and claims it if that one rolled
    back (its SMTP send failed)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO reports_exportnotice (job_id, recipient_id, email, sent_at) "
            "VALUES (%s, %s, %s, now()) ON CONFLICT DO NOTHING RETURNING id",
            [job_id, user.pk, user.email.strip()],
        )
        return cursor.fetchone() is not None


def export_job_notify(*, job_id: int) -> int:
    """E-mail each recipient of a finished scheduled job once (its file is ready, or it failed).
    Idempotent: recipients already e-mailed are skipped, and a job whose recipients were all
    e-mailed (notified_at) is left alone. Raises NoticeNotSent when the mail server failed for
    some recipient (after trying the others), for the task to retry. Returns e-mails sent."""
    job = ExportJob.objects.select_related("schedule").filter(pk=job_id).first()
    finished = (ExportJob.State.DONE, ExportJob.State.FAILED)
    if job is None or job.schedule is None or job.state not in finished or job.notified_at is not None:
        return 0
    recipients = schedule_recipients(job.schedule).mailed
    sent, failed = 0, []
    if recipients:
        backend = mail.get_connection()
        try:
            backend.open()
        except Exception as exc:
            raise NoticeNotSent(f"export #{job.pk}: the mail server did not answer: {exc}") from exc
        try:
            for user in recipients:
                try:
                    # Sent while the row is uncommitted: the row exists only if the e-mail went.
                    with transaction.atomic():
                        if not _claim(job.pk, user):
                            continue
                        backend.send_messages([message_for(job, user)])
                except Exception as exc:
                    # The error text is the server's answer; it never holds the password.
                    log.warning("export #%s: e-mail to user %s not sent: %s", job.pk, user.pk, exc)
                    failed.append(user.pk)
                    continue
                sent += 1
        finally:
            backend.close()
    if failed:
        raise NoticeNotSent(f"export #{job.pk}: e-mail to users {failed} not sent")
    ExportJob.objects.filter(pk=job.pk, notified_at__isnull=True).update(notified_at=timezone.now())
    if sent:
        log.info("export #%s (%s): %s recipient(s) e-mailed", job.pk, job.state, sent)
    return sent


def notify_on_commit(job: ExportJob) -> None:
    """Once the job's outcome is committed, a task e-mails its schedule's recipients."""
    if job.schedule_id is None:
        return
    from .tasks import export_job_notify_task

    job_id = job.pk

    def send() -> None:
        try:
            export_job_notify_task.delay(job_id)
        except Exception:
            # The export is done whatever the broker says: an e-mail that could not be queued
            # is logged, never turned into a failed export.
            log.exception("export #%s: the e-mail task could not be queued", job_id)

    transaction.on_commit(send)
