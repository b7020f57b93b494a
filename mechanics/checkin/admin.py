"""Check-in in the admin: the plan of a campaign, the check-ins and the tiers reached."""

from django import forms
from django.contrib import admin, messages

from referrals.services.compliance import campaign_rules_text_refresh

from .compliance import plan_refusals, plan_warnings
from .models import Checkin, CheckinPlan, StreakTier

FIELDS = ["streak_tiers", "makeup_cards", "makeup_window_days", "share_required"]


class CheckinPlanForm(forms.ModelForm):
    class Meta:
        model = CheckinPlan
        fields = ["campaign", *FIELDS]

    def clean_streak_tiers(self):
        tiers = self.cleaned_data["streak_tiers"]
        if len(set(tiers)) != len(tiers):
            raise forms.ValidationError("Give each tier once, e.g. 3,7,14.")
        return sorted(tiers)

    def clean(self):
        data = super().clean()
        campaign = data.get("campaign") or (self.instance.campaign if self.instance.campaign_id else None)
        if campaign is not None and not self.errors:
            probe = CheckinPlan(campaign=campaign, **{f: data.get(f) for f in FIELDS})
            refusals = plan_refusals(campaign, probe)
            if refusals:
                raise forms.ValidationError(refusals)
        return data


@admin.register(CheckinPlan)
class CheckinPlanAdmin(admin.ModelAdmin):
    form = CheckinPlanForm
    list_display = ["campaign", "streak_tiers", "makeup_cards", "makeup_window_days", "campaign_status"]
    list_select_related = ["campaign"]
    list_filter = ["campaign__status"]
    search_fields = ["campaign__name", "=campaign__slug"]
    raw_id_fields = ["campaign"]
    actions = ["refresh_rules_text"]

    @admin.display(description="campaign status")
    def campaign_status(self, plan) -> str:
        return plan.campaign.get_status_display()

    def get_readonly_fields(self, request, obj=None):
        return ["campaign"] if obj else []

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        campaign_rules_text_refresh(campaign_id=obj.campaign_id)
        for warning in plan_warnings(obj.campaign, obj):
            self.message_user(request, warning, messages.WARNING)

    @admin.action(description="Rewrite the public rules text from the plan and rules", permissions=["change"])
    def refresh_rules_text(self, request, queryset):
        for plan in queryset:
            campaign_rules_text_refresh(campaign_id=plan.campaign_id)
        self.message_user(request, f"Rewrote the rules of {queryset.count()} campaign(s).", messages.SUCCESS)


@admin.register(Checkin)
class CheckinAdmin(admin.ModelAdmin):
    list_display = ["participant", "campaign", "day", "streak", "is_makeup", "checked_at"]
    list_filter = ["campaign", "is_makeup"]
    list_select_related = ["participant", "campaign"]
    search_fields = ["=participant__openid", "participant__nickname"]
    date_hierarchy = "day"
    readonly_fields = [f.name for f in Checkin._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False  # participants check in through the mini program

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(StreakTier)
class StreakTierAdmin(admin.ModelAdmin):
    list_display = ["participant", "campaign", "days", "reached_at"]
    list_filter = ["campaign", "days"]
    list_select_related = ["participant", "campaign"]
    search_fields = ["=participant__openid"]
    readonly_fields = [f.name for f in StreakTier._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
