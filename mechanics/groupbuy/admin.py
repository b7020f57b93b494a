"""Group buying for ops staff: deals (with price tiers), the groups with their state and
actions, and the order signals waiting for the business backend."""

from django import forms
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from campaigns.models import Campaign
from referrals.admin_actions import run_each
from referrals.services.compliance import campaign_rules_text_refresh

from . import services
from .compliance import deal_findings
from .models import Deal, Group, Member, Signal, Tier, yuan


class TierFormSet(forms.BaseInlineFormSet):
    """The deal and its tiers are checked together, with the same findings as the launch check."""

    def clean(self):
        super().clean()
        deal = self.instance
        if deal.group_price_fen is None or deal.original_price_fen is None or not deal.group_size:
            return  # the deal's own fields are wrong; the form says which
        tiers = [
            (f.cleaned_data["min_members"], f.cleaned_data["price_fen"])
            for f in self.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ]
        findings = deal_findings(deal, tiers)
        if findings:
            raise ValidationError(findings)


class TierInline(admin.TabularInline):
    model = Tier
    formset = TierFormSet
    extra = 0
    fields = ["min_members", "price_fen"]


class DealForm(forms.ModelForm):
    class Meta:
        model = Deal
        fields = "__all__"  # noqa: DJ007 - the admin edits every configurable field of a deal

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "campaign" in self.fields:
            self.fields["campaign"].queryset = Campaign.objects.filter(kind=Campaign.Kind.GROUP_BUY)


@admin.register(Deal)
class DealAdmin(admin.ModelAdmin):
    form = DealForm
    list_display = [
        "title",
        "item_code",
        "campaign",
        "prices",
        "group_size",
        "hours",
        "virtual_fill",
        "is_active",
        "group_counts",
    ]
    list_filter = ["is_active", "virtual_fill", "campaign__status"]
    list_select_related = ["campaign"]
    search_fields = ["title", "item_code", "campaign__name", "campaign__slug"]
    inlines = [TierInline]
    readonly_fields = ["public_rules", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["campaign", "title", "item_code", "is_active"]}),
        ("Price", {"fields": [("original_price_fen", "group_price_fen")]}),
        ("Group", {"fields": [("group_size", "max_size", "hours")]}),
        (
            "Virtual fill (off by default; disclosed in the public rules when on)",
            {"fields": [("virtual_fill", "virtual_fill_max_missing")]},
        ),
        ("What participants read", {"fields": ["public_rules", "created_at", "updated_at"]}),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                open_groups=Count("groups", filter=Q(groups__status=Group.Status.OPEN)),
                completed_groups=Count("groups", filter=Q(groups__status=Group.Status.COMPLETED)),
            )
        )

    @admin.display(description="Groups: filling / completed")
    def group_counts(self, obj: Deal):
        url = reverse("admin:groupbuy_group_changelist") + f"?deal__id__exact={obj.pk}"
        return format_html('<a href="{}">{} / {}</a>', url, obj.open_groups, obj.completed_groups)

    @admin.display(description="Price")
    def prices(self, obj: Deal) -> str:
        return f"¥{yuan(obj.group_price_fen)} (from ¥{yuan(obj.original_price_fen)})"

    @admin.display(description="Public rules (generated)")
    def public_rules(self, obj: Deal):
        if not obj.pk:
            return "Save the deal to see the rules participants read."
        return format_html('<pre style="white-space:pre-wrap">{}</pre>', obj.campaign.reward_rules_text)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        campaign_rules_text_refresh(campaign_id=form.instance.campaign_id)


class MemberInline(admin.TabularInline):
    model = Member
    extra = 0
    fields = ["seat", "participant", "status", "price_fen", "order_id", "joined_at", "released_at"]
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
        return [("overdue", "Past deadline, not yet handled"), ("hour", "Ends within the hour")]

    def queryset(self, request, queryset):
        now = timezone.now()
        running = Q(status=Group.Status.OPEN) | Q(status=Group.Status.COMPLETED, closed_at__isnull=True)
        if self.value() == "overdue":
            return queryset.filter(running, expires_at__lte=now)
        if self.value() == "hour":
            return queryset.filter(
                running, expires_at__gt=now, expires_at__lte=now + timezone.timedelta(hours=1)
            )
        return queryset


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ["code", "deal", "leader", "status", "seats", "price_text", "opened_at", "expires_at"]
    list_filter = ["status", DueFilter, ("campaign", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["deal", "leader"]
    search_fields = ["code", "leader__nickname", "leader__openid", "deal__title", "deal__item_code"]
    date_hierarchy = "opened_at"
    inlines = [MemberInline]
    actions = ["expire_now", "cancel"]
    readonly_fields = [f.name for f in Group._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # groups are opened by leaders in the mini program

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # their members' orders hang on them

    @admin.display(description="Members")
    def seats(self, obj: Group) -> str:
        virtual = f" + {obj.virtual_count} virtual" if obj.virtual_count else ""
        if obj.capacity > obj.group_size:  # tiered: completes at K, grows up to the capacity
            return f"{obj.member_count}{virtual} (needs {obj.group_size}, up to {obj.capacity})"
        return f"{obj.member_count}{virtual} / {obj.group_size}"

    @admin.display(description="Price")
    def price_text(self, obj: Group) -> str:
        reached = obj.final_price_fen if obj.final_price_fen is not None else obj.price_for(obj.member_count)
        if reached == obj.price_fen:
            return f"¥{yuan(obj.price_fen)}"
        return f"¥{yuan(obj.price_fen)} → ¥{yuan(reached)}" + ("" if obj.closed_at else " so far")

    def _act(self, request, queryset, verb: str, call) -> None:
        def one(pk):
            group = call(pk)
            LogEntry.objects.log_actions(
                user_id=request.user.pk,
                queryset=[group],
                action_flag=CHANGE,
                change_message=f"{verb} (now {group.get_status_display().lower()})",
                single_object=True,
            )
            return group

        run_each(
            self,
            request,
            queryset.order_by("pk").values_list("pk", flat=True),
            one,
            lambda done: (
                f"{verb}: " + ", ".join(f"{g.code} ({g.get_status_display().lower()})" for g in done)
            ),
        )

    @admin.action(
        description="Expire now (as at the deadline: refund, virtual fill or settle the price)",
        permissions=["change"],
    )
    def expire_now(self, request, queryset):
        self._act(
            request,
            queryset,
            "Expired now",
            lambda pk: services.group_close_due(group_id=pk, force=True, by=request.user.get_username()),
        )

    @admin.action(description="Cancel (release the members, signal refunds)", permissions=["change"])
    def cancel(self, request, queryset):
        self._act(
            request,
            queryset,
            "Cancelled",
            lambda pk: services.group_cancel(group_id=pk, by=request.user.get_username()),
        )


class AckedFilter(admin.SimpleListFilter):
    title = "acknowledged"
    parameter_name = "acked"

    def lookups(self, request, model_admin):
        return [
            ("no", "Waiting for the business backend"),
            ("late", "Waiting over an hour"),
            ("yes", "Acknowledged"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(acked_at__isnull=True)
        if self.value() == "late":
            return queryset.filter(
                acked_at__isnull=True, created_at__lte=timezone.now() - timezone.timedelta(hours=1)
            )
        if self.value() == "yes":
            return queryset.filter(acked_at__isnull=False)
        return queryset


@admin.register(Signal)
class SignalAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "group", "member", "amount", "created_at", "acked_at", "acked_by"]
    list_filter = ["kind", AckedFilter]
    list_select_related = ["group", "member"]
    search_fields = ["group__code", "member__order_id", "member__participant__openid"]
    readonly_fields = [f.name for f in Signal._meta.fields]

    @admin.display(description="Amount", ordering="amount_fen")
    def amount(self, obj: Signal) -> str:
        return f"¥{yuan(obj.amount_fen)}"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
