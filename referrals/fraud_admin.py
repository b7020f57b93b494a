"""The fraud review queue and the versioned rule sets, for fraud reviewers."""

from django.contrib import admin, messages
from django.db import transaction
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from config.errors import ApplicationError

from .models import FraudCase, FraudRuleSet
from .services import fraud


@admin.register(FraudRuleSet)
class FraudRuleSetAdmin(admin.ModelAdmin):
    """Add a new version to change weights or thresholds; activating it is a separate step."""

    list_display = ["version", "is_active", "review_at", "decline_at", "note", "created_by", "activated_at"]
    readonly_fields = ["is_active", "created_by", "created_at", "activated_by", "activated_at"]
    actions = ["activate"]

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
        with transaction.atomic():
            chosen = queryset.select_for_update().get()
            FraudRuleSet.objects.filter(is_active=True).exclude(pk=chosen.pk).update(is_active=False)
            FraudRuleSet.objects.filter(pk=chosen.pk).update(
                is_active=True, activated_by=request.user, activated_at=timezone.now()
            )
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
        "state",
        "deadline",
        "reviewer",
        "decided_at",
        "note",
        "note_to_participant",
    ]
    exclude = ["signals"]
    actions = ["clear", "confirm"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

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

    def _decide(self, request, queryset, decision: str, verb: str) -> None:
        done, refused = 0, []
        for case_id in queryset.filter(state=FraudCase.State.OPEN).values_list("pk", flat=True):
            try:
                fraud.fraud_case_decide(
                    case_id=case_id, decision=decision, by=request.user, note=f"{verb} in the admin"
                )
                done += 1
            except ApplicationError as exc:
                refused.append(exc.message)
        self.message_user(request, f"{verb}: {done} case(s).", messages.SUCCESS if done else messages.WARNING)
        if refused:
            self.message_user(request, " ".join(refused), messages.ERROR)

    @admin.action(description="Clear (release their held rewards)", permissions=["change"])
    def clear(self, request, queryset):
        self._decide(request, queryset, FraudCase.State.CLEARED, "Cleared")

    @admin.action(description="Confirm (void unpaid rewards, block the participant)", permissions=["change"])
    def confirm(self, request, queryset):
        self._decide(request, queryset, FraudCase.State.CONFIRMED, "Confirmed")
