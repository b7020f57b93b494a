"""Price cuts for ops staff: offers with their schedule, and the tasks with state and actions."""

from django import forms
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from campaigns.models import Campaign
from referrals.admin_actions import run_each
from referrals.services.compliance import campaign_rules_text_refresh

from . import services
from .compliance import schedule_text
from .models import Help, Offer, Task, yuan


class OfferForm(forms.ModelForm):
    class Meta:
        model = Offer
        fields = "__all__"  # noqa: DJ007 - the admin edits every configurable field of an offer

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "campaign" in self.fields:
            self.fields["campaign"].queryset = Campaign.objects.filter(kind=Campaign.Kind.PRICE_CUT)


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin):
    form = OfferForm
    list_display = [
        "title",
        "item_code",
        "campaign",
        "prices",
        "helpers_needed",
        "schedule",
        "hours",
        "is_active",
        "task_counts",
    ]
    list_filter = ["is_active", "schedule", "campaign__status"]
    list_select_related = ["campaign"]
    search_fields = ["title", "item_code", "campaign__name", "campaign__slug"]
    readonly_fields = ["cuts", "public_rules", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["campaign", "title", "item_code", "is_active"]}),
        ("Price", {"fields": [("start_price_fen", "floor_price_fen")]}),
        (
            "Helpers and the cut schedule",
            {
                "fields": [
                    ("helpers_needed", "hours", "new_users_only"),
                    "schedule",
                    ("min_cut_fen", "max_cut_fen"),
                    "cuts",
                ],
                "description": "Every schedule reaches the floor exactly at the last needed helper. A random "
                "cut publishes its bounds, and they must be able to add up to the whole cut.",
            },
        ),
        ("What participants read", {"fields": ["public_rules", "created_at", "updated_at"]}),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                open_tasks=Count("tasks", filter=Q(tasks__status=Task.Status.OPEN)),
                completed_tasks=Count("tasks", filter=Q(tasks__status=Task.Status.COMPLETED)),
            )
        )

    @admin.display(description="Tasks: open / completed")
    def task_counts(self, obj: Offer):
        url = reverse("admin:pricecut_task_changelist") + f"?offer__id__exact={obj.pk}"
        return format_html('<a href="{}">{} / {}</a>', url, obj.open_tasks, obj.completed_tasks)

    @admin.display(description="Price")
    def prices(self, obj: Offer) -> str:
        return f"¥{yuan(obj.start_price_fen)} → ¥{yuan(obj.floor_price_fen)}"

    @admin.display(description="The cuts")
    def cuts(self, obj: Offer) -> str:
        if not obj.pk:
            return "Save the offer to see its cuts."
        return schedule_text(obj) if not obj.findings() else "; ".join(obj.findings())

    @admin.display(description="Public rules (generated)")
    def public_rules(self, obj: Offer):
        if not obj.pk:
            return "Save the offer to see the rules participants read."
        return format_html('<pre style="white-space:pre-wrap">{}</pre>', obj.campaign.reward_rules_text)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        campaign_rules_text_refresh(campaign_id=form.instance.campaign_id)


class HelpInline(admin.TabularInline):
    model = Help
    extra = 0
    fields = ["seq", "helper", "amount_fen", "price_after_fen", "helped_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class DueFilter(admin.SimpleListFilter):
    title = "deadline"
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [("overdue", "Past deadline, still open"), ("hour", "Ends within the hour")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "overdue":
            return queryset.filter(status=Task.Status.OPEN, expires_at__lte=now)
        if self.value() == "hour":
            return queryset.filter(
                Q(status=Task.Status.OPEN),
                expires_at__gt=now,
                expires_at__lte=now + timezone.timedelta(hours=1),
            )
        return queryset


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "offer",
        "starter",
        "status",
        "progress",
        "price_text",
        "started_at",
        "expires_at",
    ]
    list_filter = ["status", DueFilter, ("campaign", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["offer", "starter"]
    search_fields = [
        "code",
        "starter__nickname",
        "starter__openid",
        "offer__title",
        "offer__item_code",
        "order_id",
    ]
    date_hierarchy = "started_at"
    inlines = [HelpInline]
    actions = ["expire_now", "cancel"]
    readonly_fields = [f.name for f in Task._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # tasks are started by participants in the mini program

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Helpers")
    def progress(self, obj: Task) -> str:
        return f"{obj.helper_count} / {obj.helpers_needed}"

    @admin.display(description="Price")
    def price_text(self, obj: Task) -> str:
        return f"¥{yuan(obj.price_fen)} (¥{yuan(obj.remaining_fen)} left)"

    def _act(self, request, queryset, verb: str, call) -> None:
        def one(pk):
            task = call(pk)
            LogEntry.objects.log_actions(
                user_id=request.user.pk,
                queryset=[task],
                action_flag=CHANGE,
                change_message=f"{verb} (now {task.get_status_display().lower()})",
                single_object=True,
            )
            return task

        run_each(
            self,
            request,
            queryset.order_by("pk").values_list("pk", flat=True),
            one,
            lambda done: (
                f"{verb}: " + ", ".join(f"{t.code} ({t.get_status_display().lower()})" for t in done)
            ),
        )

    @admin.action(description="Expire now", permissions=["change"])
    def expire_now(self, request, queryset):
        self._act(
            request,
            queryset,
            "Expired now",
            lambda pk: services.cut_task_expire(task_id=pk, force=True, by=request.user.get_username()),
        )

    @admin.action(description="Cancel", permissions=["change"])
    def cancel(self, request, queryset):
        self._act(
            request,
            queryset,
            "Cancelled",
            lambda pk: services.cut_task_cancel(task_id=pk, by=request.user.get_username()),
        )
