"""Export jobs: queue one, run one (in a Celery worker), and the daily schedules.

A job runs once: a worker claims it with one conditional UPDATE (queued -> running), so a
task delivered twice, or sent again by the sweeper, finds nothing to do. A running job
writes a heartbeat with its progress; one whose heartbeat stopped for STALE lost its worker
and may be claimed again. The file is written under a temporary name and moved into place
only when complete: a failed job never leaves a half file behind. Once a scheduled job's
outcome (done or failed) is committed, a task e-mails its recipients (reports.notify).
"""

import contextlib
import logging
import os
import secrets
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from config.errors import ApplicationError

from .models import ExportJob, Format, ScheduledReport, export_storage
from .notify import notify_on_commit
from .registry import Context, report_get
from .writers import write_csv, write_csv_copy, write_xlsx

log = logging.getLogger(__name__)

STALE = timedelta(minutes=10)
# Queued this long without a worker taking it: the message was lost (e.g. a broker restart).
LOST = timedelta(minutes=5)
PROGRESS_EVERY_S = 1.0
# Finished exports (their rows and files) are kept this long, then deleted by the beat.
KEEP = timedelta(days=30)


# --- queue ------------------------------------------------------------------------------------
@transaction.atomic
def export_job_create(
    *,
    report: str,
    parameters: dict,
    format: str,
    requester=None,
    schedule: ScheduledReport | None = None,
    scheduled_for=None,
) -> ExportJob:
    """Validate and queue an export; the worker is told once the row is committed."""
    definition = report_get(report)
    if format not in Format.values:
        raise ApplicationError("format_unknown", f"Unknown format {format!r}: csv or xlsx.")
    cleaned = definition.clean(parameters)
    job = ExportJob.objects.create(
        report=report,
        parameters=cleaned,
        format=format,
        requester=requester,
        schedule=schedule,
        scheduled_for=scheduled_for,
    )
    _enqueue_on_commit(job.pk)
    return job


def _enqueue_on_commit(job_id: int) -> None:
    from .tasks import export_job_run_task

    transaction.on_commit(lambda: export_job_run_task.delay(job_id))


# --- run ----------------------------------------------------------------------------------------
class _Progress:
    """Writes progress and heartbeat on a connection of its own: the export reads inside one
    long transaction (one snapshot), and the admin must see the progress while it runs."""

    def __init__(self, job_id: int, attempt: int, estimate: int | None):
        self.job_id = job_id
        self.attempt = attempt
        self.estimate = estimate
        self.last = 0.0
        self.conn = None

    def __call__(self, done: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < PROGRESS_EVERY_S:
            return
        self.last = now
        percent = min(99, done * 100 // self.estimate) if self.estimate else 0
        if self.conn is None:
            self.conn = connection.get_new_connection(connection.get_connection_params())
            self.conn.autocommit = True
        self.conn.execute(
            "UPDATE reports_exportjob SET progress = GREATEST(progress, %s), row_count = %s, "
            "heartbeat_at = now() WHERE id = %s AND state = 'running' AND attempts = %s",
            (percent, done, self.job_id, self.attempt),
        )

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def _claim(job_id: int) -> ExportJob | None:
    now = timezone.now()
    claimed = (
        ExportJob.objects.filter(pk=job_id)
        .filter(
            Q(state=ExportJob.State.QUEUED) | Q(state=ExportJob.State.RUNNING, heartbeat_at__lt=now - STALE)
        )
        .update(
            state=ExportJob.State.RUNNING,
            started_at=now,
            heartbeat_at=now,
            attempts=F("attempts") + 1,
            progress=0,
            row_count=0,
        )
    )
    return ExportJob.objects.select_related("schedule").get(pk=job_id) if claimed else None


class _MovableFile(File):
    """A finished temporary file: FileSystemStorage moves it into place instead of copying."""

    def temporary_file_path(self) -> str:
        return self.name


def _partial_dir() -> str:
    path = os.path.join(settings.FISSION_EXPORTS_ROOT, ".partial")
    os.makedirs(path, exist_ok=True)
    return path


def export_job_run(*, job_id: int) -> ExportJob | None:
    """Write the job's report to its file. Idempotent: a job that is running (with a live
    heartbeat), done or failed is left alone and None returned. A failure is recorded on the
    job (state failed, the error shown in the admin) and not raised."""
    job = _claim(job_id)
    if job is None:
        return None
    partial = os.path.join(_partial_dir(), f"{job.pk}-{secrets.token_hex(8)}.part")
    progress = None
    try:
        report = report_get(job.report)
        outermost = not connection.in_atomic_block
        with transaction.atomic():
            if outermost:  # one snapshot for the whole file
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            params = report.clean(job.parameters)  # the campaign may be gone since it was queued
            tz = _time_zone(params)
            estimate = report.estimate(params) if report.estimate else None
            progress = _Progress(job.pk, job.attempts, estimate)
            with open(partial, "wb") as out:
                rows = _write(report, params, job.format, out, tz, progress)
        name = f"{timezone.now():%Y/%m}/{job.report}-{job.pk}-{secrets.token_hex(6)}.{job.format}"
        size = os.path.getsize(partial)
        stored = export_storage().save(name, _MovableFile(None, name=partial))
    except Exception as exc:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
        if not isinstance(exc, ApplicationError):
            log.exception("export job %s (%s) failed", job.pk, job.report)
        message = exc.message if isinstance(exc, ApplicationError) else f"{type(exc).__name__}: {exc}"
        failed = ExportJob.objects.filter(
            pk=job.pk, state=ExportJob.State.RUNNING, attempts=job.attempts
        ).update(state=ExportJob.State.FAILED, error=message[:2000], finished_at=timezone.now())
        job.refresh_from_db()
        if failed:
            notify_on_commit(job)
        return job
    finally:
        if progress is not None:
            progress.close()
    finished = ExportJob.objects.filter(
        pk=job.pk, state=ExportJob.State.RUNNING, attempts=job.attempts
    ).update(
        state=ExportJob.State.DONE,
        file=stored,
        file_size=size,
        row_count=rows,
        progress=100,
        error="",
        finished_at=timezone.now(),
    )
    if not finished:  # another worker took over (our heartbeat went stale): its file wins
        export_storage().delete(stored)
    job.refresh_from_db()
    if finished:
        notify_on_commit(job)
    return job


def _time_zone(params: dict):
    from campaigns.models import Campaign

    if "campaign" in params:
        zone = Campaign.objects.filter(pk=params["campaign"]).values_list("time_zone", flat=True).first()
        if zone:
            import zoneinfo

            return zoneinfo.ZoneInfo(zone)
    return timezone.get_default_timezone()


def _counted(rows, progress: _Progress):
    done = 0
    for done, row in enumerate(rows, 1):
        if not done % 5000:
            progress(done)
        yield row


def _write(report, params: dict, fmt: str, out, tz, progress: _Progress) -> int:
    columns = report.columns_for(params)
    headers = [f"{c.name} ({tz.key})" if c.kind == "datetime" else c.name for c in columns]
    kinds = [c.kind for c in columns]
    context = Context(progress=lambda done, total=None: progress(done))
    if fmt == Format.CSV and report.copy_sql is not None:
        sql, args = report.copy_sql(params)
        with connection.cursor() as cursor:
            return write_csv_copy(out, headers, cursor.cursor, sql, args, progress=progress)
    rows = _counted(report.iter_rows(params, context, xlsx=fmt == Format.XLSX), progress)
    if fmt == Format.CSV:
        return write_csv(out, headers, kinds, rows, tz=tz)
    return write_xlsx(out, headers, kinds, rows, tz=tz)


# --- the beat: daily schedules, and jobs whose worker or message was lost --------------------------
def scheduled_reports_run(*, now: datetime | None = None) -> list[int]:
    """Queue today's job of every active schedule whose local time of day has come. Idempotent
    per schedule and local day (a unique constraint): repeated beats, or two beat processes,
    queue it once. Returns the new jobs' ids."""
    now = now or timezone.now()
    created = []
    for schedule in ScheduledReport.objects.filter(is_active=True):
        local = now.astimezone(schedule.tz)
        if local.time() < schedule.time_of_day:
            continue
        if ExportJob.objects.filter(schedule=schedule, scheduled_for=local.date()).exists():
            continue
        try:
            job = _scheduled_job_create(schedule=schedule, day=local.date())
        except IntegrityError:  # another beat queued it a moment ago
            continue
        except ApplicationError as exc:
            log.warning("scheduled report %s (%s) not queued: %s", schedule.pk, schedule.name, exc.message)
            job = _scheduled_job_failed(schedule=schedule, day=local.date(), error=exc.message)
            if job is None:
                continue
        created.append(job.pk)
    return created


@transaction.atomic
def _scheduled_job_create(*, schedule: ScheduledReport, day) -> ExportJob:
    report = report_get(schedule.report)
    params = report.clean(schedule.parameters, relative_dates=True, today=day)
    return export_job_create(
        report=schedule.report,
        parameters=params,
        format=schedule.format,
        requester=schedule.created_by,
        schedule=schedule,
        scheduled_for=day,
    )


def _scheduled_job_failed(*, schedule: ScheduledReport, day, error: str) -> ExportJob | None:
    """A schedule whose parameters no longer hold (its campaign was deleted) gets the day's job
    as failed, with the reason, so the recipients see why there is no file."""
    try:
        with transaction.atomic():
            job = ExportJob.objects.create(
                report=schedule.report,
                parameters=schedule.parameters,
                format=schedule.format,
                requester=schedule.created_by,
                schedule=schedule,
                scheduled_for=day,
                state=ExportJob.State.FAILED,
                error=error,
                finished_at=timezone.now(),
            )
            notify_on_commit(job)
            return job
    except IntegrityError:
        return None


def export_jobs_requeue_stuck(*, now: datetime | None = None) -> list[int]:
    """Send the task again for jobs queued for LOST without a worker taking them, and for
    running jobs whose heartbeat stopped for STALE (their worker died). Running the job twice
    is harmless: the claim lets one run."""
    now = now or timezone.now()
    # A queued job's heartbeat marks when it was last sent again: once per LOST, not every
    # minute, while a long export keeps the workers busy.
    lost = ExportJob.objects.filter(state=ExportJob.State.QUEUED, created_at__lt=now - LOST).filter(
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - LOST)
    )
    stuck = list(lost.values_list("pk", flat=True)[:100])
    ExportJob.objects.filter(pk__in=stuck).update(heartbeat_at=now)
    stuck += list(
        ExportJob.objects.filter(state=ExportJob.State.RUNNING, heartbeat_at__lt=now - STALE).values_list(
            "pk", flat=True
        )[:100]
    )
    from .tasks import export_job_run_task

    for pk in stuck:
        export_job_run_task.delay(pk)
    return stuck


def export_files_prune(*, now: datetime | None = None) -> dict:
    """Delete exports finished more than KEEP ago (row and file), and partial files left by
    workers that died while writing (their job no longer running with a live heartbeat)."""
    now = now or timezone.now()
    old = list(ExportJob.objects.filter(finished_at__lt=now - KEEP)[:500])
    for job in old:
        export_job_delete(job=job)
    alive = set(
        ExportJob.objects.filter(state=ExportJob.State.RUNNING, heartbeat_at__gte=now - STALE).values_list(
            "pk", flat=True
        )
    )
    partials = 0
    for entry in os.scandir(_partial_dir()):
        job_id = entry.name.split("-", 1)[0]
        if job_id.isdigit() and int(job_id) in alive:
            continue
        with contextlib.suppress(FileNotFoundError):
            os.remove(entry.path)
            partials += 1
    return {"deleted_jobs": len(old), "partial_files": partials}


def export_job_delete(*, job: ExportJob) -> None:
    """Delete a job and its file (the file after the row is gone for good)."""
    name = job.file.name
    with transaction.atomic():
        job.delete()
        if name:
            transaction.on_commit(lambda: export_storage().delete(name))
