"""The ops staff's main tool: campaigns with their channels and templates, and lifecycle actions."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from config.errors import ApplicationError

from . import posters, services
from .models import Campaign, CampaignTransition, Channel, PosterTemplate


def no_progress(campaign_ids: Iterable[int]) -> dict[int, float]:
    return {}


@dataclass(frozen=True)
class CampaignPage:
    """A page that a later app shows for each campaign inside the admin (analytics: the
    cockpit). Campaigns may not import those apps, so they add theirs to CAMPAIGN_PAGES from
    their AppConfig.ready(); the campaign admin routes them at <id>/<route> and links them
    from the list and the change page."""

    route: str  # e.g. "cockpit/", after "<campaign id>/"
    view: Callable  # view(request, campaign_id, **kwargs); the admin wraps it in admin_view
    name: str  # URL name: admin:campaigns_campaign_<name>
    label: str = ""  # link text on the list and the change page ("" = no link)
    permission: str = ""  # who is shown the link ("app.codename"; the view checks it again)


CAMPAIGN_PAGES: list[CampaignPage] = []


class ChannelInline(admin.TabularInline):
    model = Channel
    extra = 0
    fields = ["code", "name", "kind", "spend"]


class PosterTemplateInline(admin.StackedInline):
    model = PosterTemplate
    extra = 0
    fields = [
        "name",
        "is_default",
        "background",
        ("avatar_x", "avatar_y", "avatar_size"),
        ("nickname_x", "nickname_y", "nickname_size", "nickname_color"),
        ("qr_x", "qr_y", "qr_size"),
        "preview",
    ]
    readonly_fields = ["preview"]

    @admin.display(description="Preview")
    def preview(self, obj: PosterTemplate):
        return template_preview_html(obj)


class TransitionInline(admin.TabularInline):
    model = CampaignTransition
    extra = 0
    fields = ["at", "from_status", "to_status", "by", "note"]
    readonly_fields = fields
    can_delete = False
    verbose_name_plural = "Status history"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def template_preview_html(obj: PosterTemplate | None):
    if obj is None or not obj.pk or not obj.background:
        return "Save the template to see a preview."
    url = reverse("admin:campaigns_postertemplate_preview", args=[obj.pk])
    return format_html(
        '<a href="{0}?v={1}" target="_blank"><img src="{0}?v={1}" alt="Preview of {2}" '
        'style="max-height:360px;border:1px solid #ccc"></a>',
        url,
        obj.version,
        obj.name,
    )


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "status_badge", "schedule", "goal", "progress", "pages", "owner"]
    list_filter = [
        "status",
        "kind",
        ("starts_at", admin.DateFieldListFilter),
        ("ends_at", admin.DateFieldListFilter),
    ]
    list_select_related = ["owner"]
    search_fields = ["name", "slug", "description"]
    date_hierarchy = "starts_at"
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["status", "status_changed_at", "cloned_from", "created_at", "updated_at", "pages"]
    inlines = [ChannelInline, PosterTemplateInline, TransitionInline]
    actions = ["launch", "pause", "end", "archive", "clone"]
    save_on_top = True
    fieldsets = [
        (None, {"fields": ["name", "slug", "kind", "owner", "description", "rules_text"]}),
        (
            "Lifecycle",
            {"fields": ["status", "pages", "status_changed_at", "cloned_from", "created_at", "updated_at"]},
        ),
        ("Schedule", {"fields": ["starts_at", "ends_at", "time_zone"]}),
        ("Goal and budget", {"fields": [("goal_metric", "goal_target"), ("budget_total", "budget_daily")]}),
        (
            "Attribution and valid users",
            {
                "fields": [
                    "attribution_window_hours",
                    "valid_event_name",
                    ("valid_property", "valid_comparison", "valid_threshold"),
                    "valid_within_hours",
                    "invite_target",
                ],
                "description": "An invitee becomes a valid user when they send this event, e.g. "
                "resume_completed with completeness ≥ 0.6.",
            },
        ),
    ]

    # Analytics replaces this with a function from campaign ids to completion (N / goal).
    progress_provider: Callable[[Iterable[int]], dict[int, float]] = staticmethod(no_progress)

    def save_model(self, request, obj, form, change):
        if change:
            # Only what the form edits: the budget counters and the status are moved by
            # services meanwhile, and a full save would write back the values read earlier.
            obj.save(
                update_fields=[*form.changed_data, "updated_at"] if form.changed_data else ["updated_at"]
            )
        else:
            obj.save()

    def get_urls(self):
        pages = [
            path(
                f"<int:campaign_id>/{page.route}",
                self.admin_site.admin_view(page.view),
                name=f"campaigns_campaign_{page.name}",
            )
            for page in CAMPAIGN_PAGES
        ]
        return [*pages, *super().get_urls()]

    def _links_for(self, request) -> bool:
        return any(
            page.label and (not page.permission or request.user.has_perm(page.permission))
            for page in CAMPAIGN_PAGES
        )

    def get_list_display(self, request):
        shown = super().get_list_display(request)
        return shown if self._links_for(request) else [f for f in shown if f != "pages"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if self._links_for(request):
            return fieldsets
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f != "pages"]})
            for name, options in fieldsets
        ]

    @admin.display(description="Pages")
    def pages(self, obj: Campaign):
        if not obj.pk:
            return "-"
        return (
            format_html_join(
                " · ",
                '<a href="{}">{}</a>',
                (
                    (reverse(f"admin:campaigns_campaign_{page.name}", args=[obj.pk]), page.label)
                    for page in CAMPAIGN_PAGES
                    if page.label
                ),
            )
            or "-"
        )

    def get_changeform_initial_data(self, request):
        return {"owner": request.user.pk, **super().get_changeform_initial_data(request)}

    def get_changelist_instance(self, request):
        cl = super().get_changelist_instance(request)
        # One call for the whole page; the page's objects are evaluated here and reused
        # by the template, so each carries its number.
        campaigns = list(cl.result_list)
        completion = self.progress_provider([c.pk for c in campaigns])
        for campaign in campaigns:
            campaign.goal_reached = round(completion.get(campaign.pk, 0) * campaign.goal_target)
        return cl

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: Campaign):
        colours = {
            Campaign.Status.DRAFT: "#777",
            Campaign.Status.SCHEDULED: "#2a6ebb",
            Campaign.Status.LIVE: "#1a8f3c",
            Campaign.Status.PAUSED: "#c77c02",
            Campaign.Status.ENDED: "#555",
            Campaign.Status.ARCHIVED: "#aaa",
        }
        return format_html(
            '<span style="color:#fff;background:{};padding:2px 6px;border-radius:3px">{}</span>',
            colours[obj.status],
            obj.get_status_display(),
        )

    @admin.display(description="Schedule", ordering="starts_at")
    def schedule(self, obj: Campaign) -> str:
        tz = obj.tz
        start = timezone.localtime(obj.starts_at, tz)
        end = timezone.localtime(obj.ends_at, tz)
        return f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} ({obj.time_zone})"

    @admin.display(description="Goal", ordering="goal_target")
    def goal(self, obj: Campaign) -> str:
        return f"{obj.goal_target:,} {obj.get_goal_metric_display().lower()}"

    @admin.display(description="Progress")
    def progress(self, obj: Campaign):
        reached = getattr(obj, "goal_reached", 0)
        percent = reached * 100 / obj.goal_target if obj.goal_target else 0
        return format_html(
            '<div title="{} of {}" style="width:120px;background:#eee;border-radius:3px">'
            '<div style="width:{}%;background:#1a8f3c;height:10px;border-radius:3px"></div></div>'
            "<small>{}%</small>",
            f"{reached:,}",
            f"{obj.goal_target:,}",
            f"{min(percent, 100):.1f}",
            f"{percent:.1f}",
        )

    def _run(self, request, queryset, verb: str, service: Callable, **kwargs) -> None:
        done, refused = [], []
        for campaign in queryset.order_by("pk"):
            try:
                result = service(campaign_id=campaign.pk, by=request.user, **kwargs)
            except ApplicationError as exc:
                refused.append(exc.message)
                continue
            done.append(result)
            LogEntry.objects.log_actions(
                user_id=request.user.pk,
                queryset=[result],
                action_flag=CHANGE,
                change_message=f"{verb} (now {result.get_status_display().lower()})",
                single_object=True,
            )
        if done:
            names = ", ".join(f"“{c}” ({c.get_status_display().lower()})" for c in done)
            self.message_user(request, f"{verb}: {len(done)} campaign(s) – {names}.", messages.SUCCESS)
        if refused:
            self.message_user(request, f"{len(refused)} refused: " + " ".join(refused), messages.ERROR)

    @admin.action(description="Launch (go live now, or schedule if it starts later)", permissions=["change"])
    def launch(self, request, queryset):
        self._run(request, queryset, "Launched", services.campaign_launch)

    @admin.action(description="Pause", permissions=["change"])
    def pause(self, request, queryset):
        self._run(request, queryset, "Paused", services.campaign_pause)

    @admin.action(description="End now", permissions=["change"])
    def end(self, request, queryset):
        self._run(request, queryset, "Ended", services.campaign_end)

    @admin.action(description="Archive", permissions=["change"])
    def archive(self, request, queryset):
        self._run(request, queryset, "Archived", services.campaign_archive)

    @admin.action(description="Clone as a new draft", permissions=["add"])
    def clone(self, request, queryset):
        self._run(request, queryset, "Cloned", services.campaign_clone)


@admin.register(PosterTemplate)
class PosterTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "campaign", "is_default", "size", "updated_at"]
    list_filter = ["is_default", "campaign__status"]
    list_select_related = ["campaign"]
    search_fields = ["name", "campaign__name", "campaign__slug"]
    raw_id_fields = ["campaign"]
    readonly_fields = ["preview", "width", "height", "version", "created_at", "updated_at"]

    @admin.display(description="Size")
    def size(self, obj: PosterTemplate) -> str:
        return f"{obj.width}×{obj.height}"

    @admin.display(description="Preview")
    def preview(self, obj: PosterTemplate):
        return template_preview_html(obj)

    def get_urls(self):
        return [
            path(
                "<int:pk>/preview.png",
                self.admin_site.admin_view(self.preview_view),
                name="campaigns_postertemplate_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request, pk: int):
        template = get_object_or_404(PosterTemplate.objects.select_related("campaign"), pk=pk)
        if not self.has_view_permission(request, template):
            return HttpResponse(status=403)
        return HttpResponse(posters.render_preview(template), content_type="image/png")


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "kind", "campaign", "spend"]
    list_filter = ["kind", "campaign__status"]
    list_select_related = ["campaign"]
    search_fields = ["code", "name", "campaign__name", "campaign__slug"]
    raw_id_fields = ["campaign"]
