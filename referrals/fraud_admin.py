"""The fraud review queue and the versioned rule sets, for fraud reviewers."""

from django import forms
from django.contrib import admin, messages
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from config.errors import ApplicationError

from . import fraud_selectors
from .admin_actions import run_each
from .models import FraudCase, FraudRuleSet, Participant, Referral, Reward
from .services import fraud


class FraudCaseDecisionForm(forms.ModelForm):
    """One case decided on its own page: the decision, the reviewer's note, and an optional
    note the participant sees beside their rewards."""

    decision = forms.ChoiceField(
        choices=[
            ("", "Leave open"),
            (FraudCase.State.CLEARED, "Clear: release the held rewards"),
            (FraudCase.State.CONFIRMED, "Confirm: void unpaid rewards, block, open cases for the ring"),
        ],
        required=False,
    )
    note = forms.CharField(max_length=300, required=False, widget=forms.Textarea(attrs={"rows": 2}))
    note_to_participant = forms.CharField(
        max_length=200,
        required=False,
        help_text="Shown to the participant beside their rewards in this campaign.",
    )

    class Meta:
        model = FraudCase
        fields = ["decision", "note", "note_to_participant"]


@admin.register(FraudRuleSet)
class FraudRuleSetAdmin(admin.ModelAdmin):
    """Add a new version to change weights or thresholds; activating it is a separate step."""

    list_display = ["version", "is_active", "review_at", "decline_at", "note", "created_by", "activated_at"]
    readonly_fields = ["is_active", "created_by", "created_at", "activated_by", "activated_at"]
    actions = ["backtest", "activate"]

    @admin.action(description="Back-test over the last 7 days (changes nothing)", permissions=["view"])
    def backtest(self, request, queryset):
        for rule_set in queryset.order_by("version"):
            r = fraud.fraud_backtest(rule_set=rule_set, days=7)
            self.message_user(
                request,
                f"v{rule_set.version} over {r['campaigns']} campaign(s) of the last 7 days: "
                f"{r['would_open']} case(s) would open, {r['would_close']} close, "
                f"{r['would_change_band']} change band; ¥{r['held_money']} more held, "
                f"¥{r['released_money']} released.",
                messages.INFO,
            )

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and (obj.is_active or obj.activated_at):  # a version that scored stays as it was
            return [f.name for f in FraudRuleSet._meta.fields]
        return self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description="Activate this version (scores from now on use it)", permissions=["change"])
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version.", messages.ERROR)
            return
        chosen = fraud.fraud_rule_set_activate(rule_set_id=queryset.get().pk, by=request.user)
        self.message_user(request, f"v{chosen.version} is active.", messages.SUCCESS)


class ScoreFilter(admin.SimpleListFilter):
    """For bulk decisions, e.g. "clear every case scoring ≤ 60 in this campaign": filter,
    select all, Clear."""

    title = "score"
    parameter_name = "score_range"
    RANGES = {"-60": (0, 60), "61-69": (61, 69), "70-89": (70, 89), "90-": (90, 10**6)}

    def lookups(self, request, model_admin):
        return [("-60", "≤ 60"), ("61-69", "61–69"), ("70-89", "70–89"), ("90-", "≥ 90")]

    def queryset(self, request, queryset):
        if self.value() in self.RANGES:
            low, high = self.RANGES[self.value()]
            return queryset.filter(score__gte=low, score__lte=high)
        return queryset


class SignalFilter(admin.SimpleListFilter):
    title = "signal"
    parameter_name = "signal"

    def lookups(self, request, model_admin):
        from .models.fraud import DEFAULT_WEIGHTS

        return [(code, code) for code in DEFAULT_WEIGHTS]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(signals__contains=[{"code": self.value()}])
        return queryset


@admin.register(FraudCase)
class FraudCaseAdmin(admin.ModelAdmin):
    list_display = [
        "participant",
        "campaign",
        "score",
        "band",
        "signal_codes",
        "state",
        "deadline",
        "reviewer",
    ]
    list_filter = ["state", "band", ScoreFilter, SignalFilter, "campaign"]
    list_select_related = ["participant", "campaign", "reviewer"]
    search_fields = ["=participant__openid"]
    ordering = ["state", "-band", "deadline"]
    readonly_fields = [
        "participant",
        "campaign",
        "rule_set",
        "score",
        "band",
        "evidence",
        "invitees",
        "rewards_of_participant",
        "timeline",
        "ring",
        "state",
        "deadline",
        "reviewer",
        "decided_at",
    ]
    form = FraudCaseDecisionForm
    actions = ["clear", "confirm", "weekly_summary"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        decided = obj is not None and obj.state != FraudCase.State.OPEN
        return [*self.readonly_fields, "note", "note_to_participant"] if decided else self.readonly_fields

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is not None and obj.state != FraudCase.State.OPEN:
            fields = [f for f in fields if f != "decision"]
        return fields

    def save_model(self, request, obj, form, change):
        """Only a decision changes a case; through the service, never a bare save."""
        decision = form.cleaned_data.get("decision")
        if not decision:
            return
        try:
            fraud.fraud_case_decide(
                case_id=obj.pk,
                decision=decision,
                by=request.user,
                note=form.cleaned_data.get("note", ""),
                note_to_participant=form.cleaned_data.get("note_to_participant", ""),
            )
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)

    def log_change(self, request, obj, message):
        return None  # the decision is recorded on the case (reviewer, time) and in the reward history

    @admin.display(description="signals")
    def signal_codes(self, obj) -> str:
        return ", ".join(s["code"] for s in obj.signals)

    @admin.display(description="Signals and evidence")
    def evidence(self, obj):
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>+{}</td><td>{}</td><td><code>{}</code></td></tr>",
            ((s["code"], s["points"], s.get("count", ""), s.get("evidence", {})) for s in obj.signals),
        )
        return format_html(
            "<table><tr><th>signal</th><th>points</th><th>count</th><th>evidence</th></tr>{}</table>", rows
        )

    @admin.display(description="Their invitees in this campaign")
    def invitees(self, obj):
        rows = list(
            Referral.objects.filter(campaign_id=obj.campaign_id, inviter_id=obj.participant_id)
            .order_by("joined_at")
            .values_list("invitee_id", "joined_at", "valid_at", "joined_device_id", "joined_ip")[:200]
        )
        valid = sum(1 for r in rows if r[2])
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (i, joined, valid_at or "–", device or "–", ip or "–")
                for i, joined, valid_at, device, ip in rows
            ),
        )
        return format_html(
            "<p>{} invitee(s) shown, {} valid (yield {}).</p><table><tr><th>participant</th><th>joined</th>"
            "<th>valid</th><th>device</th><th>IP</th></tr>{}</table>",
            len(rows),
            valid,
            f"{valid / len(rows):.0%}" if rows else "–",
            body,
        )

    @admin.display(description="Their rewards in this campaign")
    def rewards_of_participant(self, obj):
        rows = Reward.objects.filter(campaign_id=obj.campaign_id, beneficiary_id=obj.participant_id).order_by(
            "created_at"
        )[:200]
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((r.created_at, r.source, r.amount, r.status, r.hold_reason or "–") for r in rows),
        )
        return format_html(
            "<table><tr><th>granted</th><th>for</th><th>¥</th><th>status</th><th>held</th></tr>{}</table>",
            body,
        )

    @admin.display(description="Timeline in this campaign")
    def timeline(self, obj):
        entries = fraud_selectors.participant_timeline(
            campaign_id=obj.campaign_id, participant_id=obj.participant_id
        )
        return render_to_string(
            "admin/referrals/fraudcase/timeline.html",
            {"entries": entries, "tz": timezone.get_current_timezone_name()},
        )

    @admin.display(description="Identity ring (shared device, IP + user agent or account)")
    def ring(self, obj):
        from .services.fraud_rings import fraud_ring_links, fraud_ring_of

        members = fraud_ring_of(obj.participant_id)
        links = fraud_ring_links(members)
        blocked = set(
            Participant.objects.filter(pk__in=members, is_blocked=True).values_list("pk", flat=True)
        )
        picture = fraud_selectors.ring_picture(
            participant_id=obj.participant_id, links=links, blocked=blocked
        )
        return render_to_string(
            "admin/referrals/fraudcase/ring.html", {"links": links, "picture": picture, "blocked": blocked}
        )

    @admin.action(description="Weekly summary of the selected cases (CSV)", permissions=["view"])
    def weekly_summary(self, request, queryset):
        """Cases opened in the last 7 days, by campaign, band, state and signal."""
        import csv

        from django.http import HttpResponse

        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="fraud-summary-{timezone.now():%Y-%m-%d}.csv"'
        )
        response.write("\ufeff")  # Excel reads UTF-8 with a BOM
        writer = csv.writer(response)
        writer.writerow(["campaign", "band", "state", "signal", "cases"])
        writer.writerows(fraud.fraud_weekly_summary(cases=queryset))
        return response

    def _decide(self, request, queryset, decision: str, verb: str) -> None:
        run_each(
            self,
            request,
            queryset.filter(state=FraudCase.State.OPEN).values_list("pk", flat=True),
            lambda pk: fraud.fraud_case_decide(
                case_id=pk, decision=decision, by=request.user, note=f"{verb} in the admin"
            ),
            lambda done: f"{verb}: {len(done)} case(s).",
        )

    @admin.action(description="Clear (release their held rewards)", permissions=["change"])
    def clear(self, request, queryset):
        self._decide(request, queryset, FraudCase.State.CLEARED, "Cleared")

    @admin.action(description="Confirm (void unpaid rewards, block the participant)", permissions=["change"])
    def confirm(self, request, queryset):
        self._decide(request, queryset, FraudCase.State.CONFIRMED, "Confirmed")
