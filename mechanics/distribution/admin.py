"""Distribution in the admin: the plan of a campaign, distributors (approve, reject,
suspend), customer bindings (release), and the orders they attributed."""

from django import forms
from django.contrib import admin, messages

from referrals.admin_actions import run_each
from referrals.services.compliance import campaign_rules_text_refresh

from . import services
from .compliance import plan_refusals, plan_warnings
from .models import Binding, DistributionOrder, DistributionPlan, Distributor


class DistributionPlanForm(forms.ModelForm):
    class Meta:
        model = DistributionPlan
        fields = ["campaign", "admission", "protection_days", "expiry_days"]

    def clean(self):
        data = super().clean()
        campaign = data.get("campaign") or (self.instance.campaign if self.instance.campaign_id else None)
        if campaign is not None and not self.errors:
            probe = DistributionPlan(
                campaign=campaign,
                admission=data.get("admission"),
                protection_days=data.get("protection_days"),
                expiry_days=data.get("expiry_days"),
            )
            refusals = plan_refusals(campaign, probe, with_levels=True)
            if refusals:
                raise forms.ValidationError(refusals)
        return data


@admin.register(DistributionPlan)
class DistributionPlanAdmin(admin.ModelAdmin):
    form = DistributionPlanForm
    list_display = [
        "campaign",
        "admission",
        "protection_days",
        "expiry_days",
        "campaign_status",
        "updated_at",
    ]
    list_select_related = ["campaign"]
    list_filter = ["admission", "campaign__status"]
    search_fields = ["campaign__name", "=campaign__slug"]
    raw_id_fields = ["campaign"]

    @admin.display(description="campaign status")
    def campaign_status(self, plan) -> str:
        return plan.campaign.get_status_display()

    def get_readonly_fields(self, request, obj=None):
        return ["campaign"] if obj else []

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        campaign_rules_text_refresh(campaign_id=obj.campaign_id)
        for warning in plan_warnings(obj.campaign):
            self.message_user(request, warning, messages.WARNING)


@admin.register(Distributor)
class DistributorAdmin(admin.ModelAdmin):
    list_display = ["participant", "campaign", "status", "applied_at", "decided_at", "decided_by"]
    list_filter = ["status", "campaign"]
    list_select_related = ["participant", "campaign", "decided_by"]
    search_fields = ["=participant__openid", "participant__nickname"]
    readonly_fields = ["campaign", "participant", "status", "applied_at", "decided_at", "decided_by", "note"]
    actions = ["approve", "reject", "suspend"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False  # participants apply through the mini program

    def _decide(self, request, queryset, action: str, verb: str) -> None:
        run_each(
            self,
            request,
            queryset.values_list("pk", flat=True),
            lambda pk: services.distributor_decide(
                distributor_id=pk, action=action, by=request.user, note=f"{verb} in the admin"
            ),
            lambda done: f"{verb}: {len(done)} distributor(s).",
        )

    @admin.action(description="Approve as distributors", permissions=["change"])
    def approve(self, request, queryset):
        self._decide(request, queryset, "approve", "Approved")

    @admin.action(description="Reject the applications", permissions=["change"])
    def reject(self, request, queryset):
        self._decide(request, queryset, "reject", "Rejected")

    @admin.action(
        description="Suspend (their customers' orders earn nothing meanwhile)", permissions=["change"]
    )
    def suspend(self, request, queryset):
        self._decide(request, queryset, "suspend", "Suspended")


class ActiveNowFilter(admin.SimpleListFilter):
    title = "protection"
    parameter_name = "protected"

    def lookups(self, request, model_admin):
        return [("yes", "In the protection period"), ("no", "Past the protection period")]

    def queryset(self, request, queryset):
        from django.utils import timezone

        now = timezone.now()
        if self.value() == "yes":
            return queryset.filter(status=Binding.Status.ACTIVE, protected_until__gt=now)
        if self.value() == "no":
            return queryset.filter(status=Binding.Status.ACTIVE, protected_until__lte=now)
        return queryset


@admin.register(Binding)
class BindingAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "customer",
        "distributor",
        "campaign",
        "status",
        "bound_at",
        "protected_until",
        "expires_at",
        "ended_at",
    ]
    list_filter = ["status", ActiveNowFilter, "campaign"]
    list_select_related = ["customer", "distributor", "campaign"]
    search_fields = ["=customer__openid", "=distributor__openid", "customer__nickname"]
    readonly_fields = [f.name for f in Binding._meta.fields]
    actions = ["release", "expire_due"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False  # customers bind by opening a distributor's link

    @admin.action(description="Release (end the binding now)", permissions=["change"])
    def release(self, request, queryset):
        run_each(
            self,
            request,
            queryset.values_list("pk", flat=True),
            lambda pk: services.binding_release(binding_id=pk, by=request.user, note="released in the admin"),
            lambda done: f"Released: {len(done)} binding(s).",
        )

    @admin.action(description="Expire every binding past its expiry now (the beat does this too)")
    def expire_due(self, request, queryset):
        count = services.bindings_expire()
        self.message_user(request, f"Expired {count} binding(s).", messages.SUCCESS)


@admin.register(DistributionOrder)
class DistributionOrderAdmin(admin.ModelAdmin):
    list_display = ["order_id", "campaign", "customer", "distributor", "level2", "amount", "paid_at"]
    list_filter = ["campaign"]
    list_select_related = ["campaign", "customer", "distributor", "level2"]
    search_fields = ["=order_id", "=distributor__openid"]
    readonly_fields = [f.name for f in DistributionOrder._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
