"""Invite tasks in the admin: the task with its tiers (written as milestone reward rules),
each participant's progress with filters, and the tiers reached."""

import re
from decimal import Decimal

from django import forms
from django.contrib import admin
from django.db.models import F, Q
from django.utils.html import format_html_join

from campaigns.models import Campaign
from config.errors import ApplicationError
from referrals.admin_actions import run_each
from referrals.models import RewardRule
from referrals.services.compliance import campaign_rules_text_refresh

from . import selectors, services
from .compliance import launch_findings
from .models import InviteTask, TaskProgress, TierReached

TIER_LINE = re.compile(
    r"^\s*(?P<count>\d+)\s*(?:friends?)?\s*(?:=|:|→|->)\s*¥?\s*(?P<value>\d+(?:\.\d{1,2})?)\s*"
    r"(?P<unit>points?|cash|yuan|元)?\s*(?:\|\s*(?P<name>.+?))?\s*$",
    re.IGNORECASE,
)


def parse_tiers(text: str) -> list[services.TierSpec]:
    """“3 = 5.00” (¥5 cash for 3 valid friends), “10 = 200 points”, “5 = 8.88 | Silver chest”."""
    specs, errors = [], []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = TIER_LINE.match(line)
        if not match:
            errors.append(f"Line {n}: write “friends = amount”, e.g. “3 = 5.00” or “10 = 200 points”.")
            continue
        count, value = int(match["count"]), match["value"]
        points = (match["unit"] or "").lower().startswith("point")
        specs.append(
            services.TierSpec(
                count=count,
                kind=RewardRule.Kind.POINTS if points else RewardRule.Kind.CASH,
                amount=None if points else Decimal(value).quantize(Decimal("0.01")),
                points=int(Decimal(value)) if points else None,
                name=(match["name"] or "").strip(),
            )
        )
    if errors:
        raise forms.ValidationError(errors)
    counts = [s.count for s in specs]
    if counts != sorted(counts) or len(set(counts)) != len(counts):
        raise forms.ValidationError("List the tiers from the fewest friends to the most, each count once.")
    return specs


def tiers_as_text(campaign: Campaign) -> str:
    lines = []
    for rule in selectors.tiers_of(campaign):
        value = f"{rule.points} points" if rule.kind == RewardRule.Kind.POINTS else f"{rule.amount}"
        if rule.kind == RewardRule.Kind.COUPON:
            continue  # coupon tiers are edited with the campaign's reward rules
        default = f"Invite task: {rule.milestone} valid friends"
        lines.append(f"{rule.milestone} = {value}" + (f" | {rule.name}" if rule.name != default else ""))
    return "\n".join(lines)


class InviteTaskForm(forms.ModelForm):
    tiers = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5, "cols": 50}),
        help_text="One tier a line, fewest friends first: “3 = 5.00” gives ¥5 cash at 3 valid friends; "
        "“10 = 200 points”; “| name” names the tier. Saved as the campaign's milestone reward rules "
        "(each paid once, through the reward ledger); rewards add up as tiers unlock.",
    )

    class Meta:
        model = InviteTask
        fields = ["campaign", "title", "description"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["campaign"].queryset = Campaign.objects.filter(kind=Campaign.Kind.INVITE_TASK)
        if self.instance.pk:
            self.fields["tiers"].initial = tiers_as_text(self.instance.campaign)

    def clean_tiers(self):
        specs = parse_tiers(self.cleaned_data["tiers"])
        if not specs:
            raise forms.ValidationError("Give at least one tier.")
        return specs


@admin.register(InviteTask)
class InviteTaskAdmin(admin.ModelAdmin):
    form = InviteTaskForm
    list_display = ["title", "campaign", "campaign_status", "tier_summary", "swept_until"]
    list_filter = ["campaign__status"]
    list_select_related = ["campaign"]
    search_fields = ["title", "campaign__name", "campaign__slug"]
    readonly_fields = ["tier_table", "compliance", "swept_until"]
    fields = ["campaign", "title", "description", "tiers", "tier_table", "compliance", "swept_until"]

    @admin.display(description="status", ordering="campaign__status")
    def campaign_status(self, obj: InviteTask) -> str:
        return obj.campaign.get_status_display()

    @admin.display(description="tiers")
    def tier_summary(self, obj: InviteTask) -> str:
        tiers = selectors.tiers_of(obj.campaign)
        return " · ".join(f"{t.milestone} → {selectors.reward_text(t)}" for t in tiers) or "none"

    @admin.display(description="tiers as participants see them")
    def tier_table(self, obj: InviteTask):
        if not obj.pk:
            return "Save to see the tiers."
        tiers = selectors.tiers_of(obj.campaign)
        return (
            format_html_join(
                "",
                "<div>{} valid friends → {} <small>({})</small></div>",
                ((t.milestone, selectors.reward_text(t), t.name) for t in tiers),
            )
            or "No tiers."
        )

    @admin.display(description="launch check")
    def compliance(self, obj: InviteTask) -> str:
        if not obj.pk:
            return "Save to run the launch check."
        found = launch_findings(obj.campaign)
        return " ".join(found) if found else "Nothing blocks the launch of this task."

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        try:
            services.invite_tiers_set(campaign_id=form.instance.campaign_id, tiers=form.cleaned_data["tiers"])
        except ApplicationError as exc:
            self.message_user(request, f"Tiers not saved: {exc.message}", level="error")
        campaign_rules_text_refresh(campaign_id=form.instance.campaign_id)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)

        class Checked(form):
            def clean(self):
                cleaned = super().clean()
                campaign, specs = cleaned.get("campaign"), cleaned.get("tiers")
                if campaign and specs:
                    # The same checks the service runs, before anything is saved.
                    rules = [
                        RewardRule(
                            campaign=campaign,
                            trigger=RewardRule.Trigger.MILESTONE,
                            milestone=s.count,
                            kind=s.kind,
                            amount=s.amount,
                            points=s.points,
                            name=s.rule_name(),
                        )
                        for s in specs
                    ]
                    from referrals.services.compliance import rule_findings

                    from .compliance import tier_problems

                    problems = tier_problems(campaign, rules)
                    for rule in rules:
                        problems += [
                            f"{rule.milestone} friends: {f}"
                            for f in rule_findings(rule, campaign)
                            if f.blocking
                        ]
                    if problems:
                        self.add_error("tiers", problems)
                return cleaned

        return Checked


class ProgressFilter(admin.SimpleListFilter):
    title = "progress"
    parameter_name = "progress"

    def lookups(self, request, model_admin):
        return [
            ("none", "No valid friend yet"),
            ("started", "Some tiers to go"),
            ("completed", "Every tier unlocked"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.filter(valid_friends=0)
        if self.value() == "started":
            return queryset.filter(valid_friends__gt=0).filter(
                Q(campaign__invite_target__isnull=True) | Q(valid_friends__lt=F("campaign__invite_target"))
            )
        if self.value() == "completed":
            return queryset.filter(valid_friends__gte=F("campaign__invite_target"))
        return queryset


class PendingFilter(admin.SimpleListFilter):
    title = "friends not yet valid"
    parameter_name = "pending"

    def lookups(self, request, model_admin):
        return [("yes", "Has friends not yet valid"), ("no", "None")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(invited_friends__gt=F("valid_friends"))
        if self.value() == "no":
            return queryset.filter(invited_friends=F("valid_friends"))
        return queryset


class InviteCampaignFilter(admin.SimpleListFilter):
    title = "campaign"
    parameter_name = "campaign"

    def lookups(self, request, model_admin):
        return [
            (c.pk, c.name)
            for c in Campaign.objects.filter(kind=Campaign.Kind.INVITE_TASK).order_by("-starts_at")[:50]
        ]

    def queryset(self, request, queryset):
        return queryset.filter(campaign_id=self.value()) if self.value() else queryset


@admin.register(TaskProgress)
class TaskProgressAdmin(admin.ModelAdmin):
    list_display = [
        "invitee",
        "campaign",
        "valid_count",
        "pending_count",
        "tiers_count",
        "to_go",
        "joined_at",
    ]
    list_filter = [InviteCampaignFilter, ProgressFilter, PendingFilter]
    list_select_related = ["invitee", "campaign"]
    search_fields = ["invitee__nickname", "=invitee__openid"]
    actions = ["recheck"]
    fields = ["invitee", "campaign", "inviter", "status", "joined_at", "valid_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        rows = super().get_queryset(request).filter(campaign__kind=Campaign.Kind.INVITE_TASK)
        return selectors.progress_rows(rows).order_by("-valid_friends", "-joined_at")

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="valid friends", ordering="valid_friends")
    def valid_count(self, obj) -> int:
        return obj.valid_friends

    @admin.display(description="not yet valid")
    def pending_count(self, obj) -> int:
        return obj.invited_friends - obj.valid_friends

    @admin.display(description="tiers reached", ordering="tiers_reached")
    def tiers_count(self, obj) -> int:
        return obj.tiers_reached

    @admin.display(description="to go (top tier)")
    def to_go(self, obj) -> str:
        target = obj.campaign.invite_target
        if not target:
            return "–"
        left = target - obj.valid_friends
        return "done" if left <= 0 else str(left)

    def has_recheck_permission(self, request) -> bool:
        # It may grant tier rewards the ledger missed: for those who run the task.
        return request.user.has_perm("invites.change_invitetask")

    @admin.action(description="Re-check tiers of the selected participants", permissions=["recheck"])
    def recheck(self, request, queryset):
        rows = list(queryset.values_list("pk", "campaign_id", "invitee_id"))
        by_pk = {pk: (c, p) for pk, c, p in rows}
        run_each(
            self,
            request,
            by_pk,
            lambda pk: services.invite_progress_recheck(
                campaign_id=by_pk[pk][0], participant_id=by_pk[pk][1]
            ),
            lambda done: f"Checked {len(done)} participant(s); {sum(done)} tier(s) newly recorded.",
        )


@admin.register(TierReached)
class TierReachedAdmin(admin.ModelAdmin):
    list_display = ["participant", "campaign", "milestone", "reached_at", "recorded_at"]
    list_filter = ["milestone", InviteCampaignFilter]
    list_select_related = ["participant", "campaign"]
    search_fields = ["participant__nickname", "=participant__openid"]
    date_hierarchy = "reached_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
