"""Exports in the admin: queue one, watch its progress bar, download the file; daily schedules.

Everyone sees their own exports (and those of schedules they receive); the view_all_exportjob
permission shows everyone's. Files leave only through the download view (reports.views).
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from config.errors import ApplicationError

from . import services, views
from .forms import ExportForm, ScheduledReportForm
from .models import ExportJob, ScheduledReport
from .notify import schedule_recipients
from .registry import report_get, report_list


def _person(user) -> str:
    name = user.get_full_name() or user.get_username()
    return f"{name} <{user.email.strip()}>"


def _title(name: str) -> str:
    try:
        return report_get(name).title
    except ApplicationError:
        return name


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "report_title",
        "parameters_text",
        "file_format",
        "outcome",
        "requester",
        "created_at",
    ]
    list_display_links = ["id", "report_title"]
    list_filter = ["state", "format", "report"]
    list_select_related = ["requester"]
    list_per_page = 50
    readonly_fields = [
        "report",
        "parameters",
        "format",
        "outcome",
        "state",
        "progress",
        "row_count",
        "file_size",
        "error",
        "requester",
        "schedule",
        "scheduled_for",
        "attempts",
        "created_at",
        "started_at",
        "finished_at",
        "notified_at",
        "emailed",
    ]
    exclude = ["file", "heartbeat_at"]

    class Media:
        js = ["reports/export_progress.js"]
        css = {"all": ["reports/export_progress.css"]}

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs.filter(ExportJob.visible_q(request.user)).distinct()

    def has_change_permission(self, request, obj=None):
        return False

    def get_urls(self):
        site = self.admin_site
        return [
            path("status/", site.admin_view(views.export_status), name="reports_exportjob_status"),
            path(
                "<int:pk>/download/",
                site.admin_view(views.export_download),
                name="reports_exportjob_download",
            ),
            *super().get_urls(),
        ]

    @admin.display(description="report", ordering="report")
    def report_title(self, obj) -> str:
        return _title(obj.report)

    @admin.display(description="e-mailed to")
    def emailed(self, obj) -> str:
        if obj.schedule_id is None:
            return "– (not a scheduled report)"
        notices = obj.notices.order_by("sent_at")
        return ", ".join(f"{n.email} ({n.sent_at:%Y-%m-%d %H:%M} UTC)" for n in notices) or "nobody yet"

    @admin.display(description="format", ordering="format")
    def file_format(self, obj) -> str:
        return obj.format.upper()

    @admin.display(description="parameters")
    def parameters_text(self, obj) -> str:
        return ", ".join(
            f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in obj.parameters.items()
        )

    @admin.display(description="progress / file")
    def outcome(self, obj):
        """A progress bar that export_progress.js keeps up to date, a download link, or the error."""
        status_url = reverse(f"{self.admin_site.name}:reports_exportjob_status")
        if obj.state == ExportJob.State.DONE:
            url = reverse(f"{self.admin_site.name}:reports_exportjob_download", args=[obj.pk])
            return format_html(
                '<a class="export-download" href="{}">Download</a> · {} rows, {} KB',
                url,
                obj.row_count,
                obj.file_size // 1024,
            )
        if obj.state == ExportJob.State.FAILED:
            return format_html('<span class="export-error">Failed: {}</span>', obj.error)
        return format_html(
            '<span class="export-progress" data-job="{}" data-status-url="{}">'
            '<progress max="100" value="{}"></progress> '
            '<span class="export-label">{} {}% · {} rows</span></span>',
            obj.pk,
            status_url,
            obj.progress,
            obj.get_state_display(),
            obj.progress,
            obj.row_count,
        )

    # --- the "add export" page: choose a report, then its parameters and the format ----------
    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "title": "New export"}
        name = request.GET.get("report") or request.POST.get("report")
        if not name:
            context["reports"] = report_list()
            return TemplateResponse(request, "admin/reports/exportjob/choose_report.html", context)
        try:
            report = report_get(name)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return redirect(f"{self.admin_site.name}:reports_exportjob_add")
        form = ExportForm(request.POST or None, report=report)
        if request.method == "POST" and form.is_valid():
            try:
                job = services.export_job_create(
                    report=report.name,
                    parameters=form.parameters,
                    format=form.cleaned_data["format"],
                    requester=request.user,
                )
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                self.log_addition(request, job, [{"added": {}}])
                self.message_user(
                    request,
                    f"Export #{job.pk} ({report.title}) is queued: its progress shows below.",
                    messages.SUCCESS,
                )
                return redirect(f"{self.admin_site.name}:reports_exportjob_changelist")
        context |= {"report": report, "form": form, "title": f"Export: {report.title}"}
        return TemplateResponse(request, "admin/reports/exportjob/add_form.html", context)

    # --- deleting a job deletes its file ---------------------------------------------------
    def delete_model(self, request, obj):
        services.export_job_delete(job=obj)

    def delete_queryset(self, request, queryset):
        for job in queryset:
            services.export_job_delete(job=job)


@admin.register(ScheduledReport)
class ScheduledReportAdmin(admin.ModelAdmin):
    form = ScheduledReportForm
    list_display = ["name", "report_title", "format", "time_of_day", "time_zone", "is_active", "last_job"]
    list_filter = ["is_active", "report"]
    filter_horizontal = ["recipients"]
    fields = [
        "name",
        "report",
        "parameters",
        "format",
        "time_of_day",
        "time_zone",
        "recipients",
        "who_is_emailed",
        "is_active",
        "created_by",
        "created_at",
        "updated_at",
    ]
    readonly_fields = ["who_is_emailed", "created_by", "created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        recipients = schedule_recipients(form.instance)
        if recipients.mailed:
            self.message_user(
                request,
                "Each day's file (or its failure) will be e-mailed to: "
                + ", ".join(_person(u) for u in recipients.mailed)
                + ".",
                messages.INFO,
            )
        if recipients.skipped:
            self.message_user(
                request,
                "Not e-mailed (they can still see the files in their export list if they may): "
                + "; ".join(f"{u.get_username()}: {reason}" for u, reason in recipients.skipped)
                + ".",
                messages.WARNING,
            )

    @admin.display(description="e-mailed")
    def who_is_emailed(self, obj):
        """Who gets the day's e-mail, and who does not and why: the form says it before anyone
        waits for an e-mail that cannot come."""
        if obj is None or obj.pk is None:
            return (
                "Recipients with an e-mail address are e-mailed when each day's file is ready "
                "(or failed). Save to see who will be."
            )
        recipients = schedule_recipients(obj)
        parts = [
            format_html(
                "<p>Each day's file (or its failure) is e-mailed to: {}.</p>",
                ", ".join(_person(u) for u in recipients.mailed) or "nobody",
            )
        ]
        if recipients.skipped:
            parts.append(
                format_html(
                    '<p class="errornote">Not e-mailed: {}. Give them an e-mail address (Users) '
                    "or remove them.</p>",
                    format_html_join(
                        "; ",
                        "<strong>{}</strong> ({})",
                        ((u.get_username(), r) for u, r in recipients.skipped),
                    ),
                )
            )
        return format_html_join("", "{}", ((p,) for p in parts))

    @admin.display(description="report", ordering="report")
    def report_title(self, obj) -> str:
        return _title(obj.report)

    @admin.display(description="last written")
    def last_job(self, obj):
        job = obj.jobs.order_by("-scheduled_for").first()
        if job is None:
            return "–"
        return format_html(
            '<a href="{}">{}: {}</a>',
            reverse(f"{self.admin_site.name}:reports_exportjob_change", args=[job.pk]),
            job.scheduled_for,
            job.get_state_display(),
        )
