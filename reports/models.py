"""Report exports: the jobs that write a report to a file, and the daily schedules that make them.

Export files are private: they live in their own storage outside MEDIA_ROOT (which `make run`
serves publicly in debug mode) and leave the server only through the permission-checked
download view (reports.views.export_download).
"""

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import FileSystemStorage
from django.db import models
from django.db.models import Q


class PrivateStorage(FileSystemStorage):
    """Files without a URL: asking for one is a bug (it would point into the public media)."""

    def url(self, name):
        raise ValueError("Export files have no public URL: they are downloaded through the download view.")


def export_storage() -> FileSystemStorage:
    """A callable, so the root is read when used (tests move it)."""
    return PrivateStorage(location=settings.FISSION_EXPORTS_ROOT)


class Format(models.TextChoices):
    CSV = "csv", "CSV (UTF-8 with BOM, for Excel)"
    XLSX = "xlsx", "Excel workbook (XLSX)"


def validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"{value!r} is not a time zone (e.g. Asia/Shanghai).") from exc


class ScheduledReport(models.Model):
    """A report written every day at a local time, for the staff users it names."""

    name = models.CharField(max_length=120)
    report = models.CharField(max_length=40)
    parameters = models.JSONField(
        default=dict,
        blank=True,
        help_text='JSON, e.g. {"campaign": 3, "date_from": "yesterday", "date_to": "yesterday"}. '
        'Dates may be "today", "yesterday" or "today-N", resolved in this schedule\'s time zone '
        "on the day the report is written.",
    )
    format = models.CharField(max_length=4, choices=Format.choices, default=Format.XLSX)
    time_of_day = models.TimeField(help_text="Local time in the time zone below.")
    time_zone = models.CharField(max_length=64, default="Asia/Shanghai", validators=[validate_time_zone])
    recipients = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="scheduled_reports",
        limit_choices_to={"is_staff": True, "is_active": True},
        help_text="Staff users who see and may download each day's file.",
    )
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from config.errors import ApplicationError

        from .registry import report_get

        try:
            report = report_get(self.report)
            report.clean(self.parameters or {}, relative_dates=True)
        except ApplicationError as exc:
            field = "report" if exc.code == "report_unknown" else "parameters"
            raise ValidationError({field: exc.message}) from exc

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class ExportJob(models.Model):
    """One report written to one file by a Celery worker, with its progress and outcome."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    report = models.CharField(max_length=40)
    parameters = models.JSONField(default=dict, blank=True)
    format = models.CharField(max_length=4, choices=Format.choices, default=Format.CSV)
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent, 0–100.")
    row_count = models.PositiveBigIntegerField(default=0)
    file = models.FileField(storage=export_storage, upload_to="%Y/%m/", max_length=255, blank=True)
    file_size = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    schedule = models.ForeignKey(
        ScheduledReport, on_delete=models.SET_NULL, null=True, blank=True, related_name="jobs"
    )
    # The schedule's local day this job is that day's report of (one per schedule and day).
    scheduled_for = models.DateField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Written with the progress: a running job whose heartbeat stopped lost its worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # A scheduled job's recipients have all been e-mailed that it is done (or failed).
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("view_all_exportjob", "Can see and download every user's exports")]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "scheduled_for"],
                condition=Q(schedule__isnull=False),
                name="exportjob_once_per_schedule_and_day",
            ),
            models.CheckConstraint(condition=Q(progress__lte=100), name="exportjob_progress_at_most_100"),
            models.CheckConstraint(condition=~Q(state="done") | ~Q(file=""), name="exportjob_done_has_file"),
            models.CheckConstraint(
                condition=~Q(state="failed") | Q(file=""), name="exportjob_failed_has_no_file"
            ),
        ]
        indexes = [models.Index(fields=["requester", "-created_at"], name="exportjob_by_requester")]

    def __str__(self) -> str:
        return f"{self.report} #{self.pk} ({self.state})"

    @property
    def filename(self) -> str:
        """What the browser saves it as, e.g. rewards-campaign-3-2027-02-03-17.csv."""
        stamp = (self.finished_at or self.created_at).strftime("%Y-%m-%d")
        campaign = self.parameters.get("campaign")
        middle = f"-campaign-{campaign}" if campaign else ""
        return f"{self.report}{middle}-{stamp}-{self.pk}.{self.format}"

    def visible_to(self, user) -> bool:
        if not (user.is_active and user.is_staff and user.has_perm("reports.view_exportjob")):
            return False
        if user.has_perm("reports.view_all_exportjob") or self.requester_id == user.pk:
            return True
        return self.schedule_id is not None and self.schedule.recipients.filter(pk=user.pk).exists()

    @classmethod
    def visible_q(cls, user) -> Q:
        """The jobs a user may see: their own and their schedules', or all with view_all."""
        if user.has_perm("reports.view_all_exportjob"):
            return Q()
        return Q(requester=user) | Q(schedule__recipients=user)


class ExportNotice(models.Model):
    """One e-mail sent to one recipient about one scheduled job (done or failed). The row is
    the claim: it is inserted in the transaction that sends the e-mail, so a retried task or a
    second worker finds it and sends nothing (reports.notify)."""

    job = models.ForeignKey(ExportJob, on_delete=models.CASCADE, related_name="notices")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    email = models.EmailField(help_text="The address it was sent to.")
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["job", "recipient"], name="exportnotice_once_per_job_and_recipient"
            )
        ]

    def __str__(self) -> str:
        return f"export #{self.job_id} -> {self.email}"
