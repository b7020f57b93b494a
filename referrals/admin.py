"""Participants, the invite tree and server API keys, for ops staff."""

from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from campaigns.admin import CampaignAdmin
from campaigns.models import Campaign
from config.errors import ApplicationError

from .admin_actions import run_each
from .models import (
    ApiKey,
    CouponCode,
    Participant,
    Payout,
    PayoutBatch,
    Reconciliation,
    Referral,
    Reward,
    RewardRule,
    ShareLink,
)
from .services import apikeys, compliance, coupons, payouts, rewards


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    list_display = ["id", "nickname", "openid", "first_seen_at", "first_ip", "is_blocked"]
    list_filter = ["is_blocked", ("first_seen_at", admin.DateFieldListFilter)]
    search_fields = ["=openid", "=unionid", "nickname", "=first_device_id"]
    # session_key is not a field here on purpose: it never leaves the server.
    fields = [
        "app_id",
        "openid",
        "unionid",
        "nickname",
        "avatar",
        "first_seen_at",
        "first_device_id",
        "first_ip",
        "last_login_at",
        "is_blocked",
        "staff_user",
    ]
    raw_id_fields = ["staff_user"]
    readonly_fields = [
        "app_id",
        "openid",
        "unionid",
        "first_seen_at",
        "first_device_id",
        "first_ip",
        "last_login_at",
    ]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        # Who is whom decides who may review whose fraud case: superusers only.
        if request.user.is_superuser:
            return self.readonly_fields
        return [*self.readonly_fields, "staff_user"]


@admin.register(Referral)
class ReferralAdmin(admin.ModelAdmin):
    list_display = ["invitee", "inviter", "campaign", "depth", "status", "channel", "joined_at", "valid_at"]
    list_filter = ["status", "campaign", ("joined_at", admin.DateFieldListFilter)]
    list_select_related = ["invitee", "inviter", "campaign", "channel"]
    search_fields = ["=invitee__openid", "=inviter__openid", "invitee__nickname"]
    raw_id_fields = ["campaign", "invitee", "inviter", "root", "link", "channel", "open"]
    readonly_fields = [f.name for f in Referral._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False  # edges are made by joins, never by hand


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    list_display = ["code", "sharer", "campaign", "channel", "created_at"]
    list_select_related = ["sharer", "campaign", "channel"]
    list_filter = ["campaign"]
    search_fields = ["=code", "=sharer__openid"]
    readonly_fields = ["code", "sharer", "campaign", "channel", "created_at"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "key_id", "created_by", "created_at", "last_used_at", "revoked_at"]
    list_select_related = ["created_by"]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    fields = ["name", *readonly_fields]
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        key, raw = apikeys.api_key_create(name=obj.name, by=request.user)
        obj.pk = key.pk  # the admin's "added" message and redirect use the saved key
        obj.refresh_from_db()
        self.message_user(
            request,
            f"The key for “{key.name}” is {raw} — copy it now: it is not stored and cannot be shown "
            f"again. Send “{key.key_id}” as X-Fission-Key and sign with the key.",
            messages.WARNING,
        )

    @admin.action(description="Revoke (calls with it are refused at once)", permissions=["change"])
    def revoke(self, request, queryset):
        count = apikeys.api_keys_revoke(key_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)


# --- rewards ------------------------------------------------------------------------------
class RewardRuleForm(forms.ModelForm):
    class Meta:
        model = RewardRule
        fields = [
            "name",
            "is_active",
            "trigger",
            "trigger_event",
            "milestone",
            "beneficiary",
            "level",
            "kind",
            "amount_kind",
            "amount",
            "amount_min",
            "amount_max",
            "percent",
            "amount_cap",
            "points",
            "cap_per_participant",
            "cap_per_participant_daily",
            "cap_per_device",
            "hold_hours",
            "release_event",
        ]

    def clean(self):
        data = super().clean()
        campaign = getattr(self.instance, "campaign", None) if self.instance.campaign_id else None
        campaign = campaign or getattr(self, "parent_campaign", None)
        if campaign is not None and not self.errors:
            fields = {k: v for k, v in data.items() if k in RewardRuleForm.Meta.fields}
            probe = RewardRule(campaign=campaign, **fields)
            refusals = [str(f) for f in compliance.rule_findings(probe, campaign) if f.blocking]
            if refusals:
                raise forms.ValidationError(refusals)
        return data


class RewardRuleFormSet(forms.BaseInlineFormSet):
    """Hands each rule form its campaign, also on the add page, where the campaign is not
    saved yet (the campaign form is validated first, so its fields are filled in)."""

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        form.parent_campaign = self.instance
        return form


class RewardRuleInline(admin.StackedInline):
    model = RewardRule
    form = RewardRuleForm
    formset = RewardRuleFormSet
    extra = 0
    fieldsets = [
        (
            None,
            {
                "fields": [
                    ("name", "is_active"),
                    ("trigger", "trigger_event", "milestone"),
                    ("beneficiary", "level"),
                ]
            },
        ),
        (
            "Amount",
            {
                "fields": [
                    ("kind", "amount_kind"),
                    ("amount", "amount_min", "amount_max"),
                    ("percent", "amount_cap", "points"),
                ]
            },
        ),
        (
            "Caps and hold",
            {
                "fields": [
                    ("cap_per_participant", "cap_per_participant_daily", "cap_per_device"),
                    ("hold_hours", "release_event"),
                ]
            },
        ),
    ]


class CampaignWithRulesAdmin(CampaignAdmin):
    """The campaign admin of the campaigns app, with its reward rules inline (rules live
    in this app, which the campaigns app may not import)."""

    inlines = [*CampaignAdmin.inlines[:2], RewardRuleInline, *CampaignAdmin.inlines[2:]]

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        return [
            *fieldsets,
            (
                "Rewards",
                {"fields": ["level2_enabled", "budget_reserved", "budget_spent", "reward_rules_text"]},
            ),
        ]

    def get_readonly_fields(self, request, obj=None):
        return [
            *super().get_readonly_fields(request, obj),
            "budget_reserved",
            "budget_spent",
            "reward_rules_text",
        ]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        compliance.campaign_rules_text_refresh(campaign_id=form.instance.pk)
        warnings = [
            f"“{rule}”: {f}"
            for rule in form.instance.reward_rules.filter(is_active=True)
            for f in compliance.rule_findings(rule)
            if not f.blocking
        ]
        for warning in warnings:
            self.message_user(request, warning, messages.WARNING)


admin.site.unregister(Campaign)
admin.site.register(Campaign, CampaignWithRulesAdmin)


class PayableFilter(admin.SimpleListFilter):
    title = "payout"
    parameter_name = "payout"

    def lookups(self, request, model_admin):
        return [
            ("payable", "Payable now (goes into the next batch)"),
            ("waiting", "Approved, hold not over"),
            ("failed", "Failed too often: needs a person"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "payable":
            return queryset.filter(pk__in=payouts.payable_rewards().values("pk"))
        if self.value() == "waiting":
            return queryset.filter(status=Reward.Status.APPROVED, kind="cash").exclude(
                payable_at__lte=timezone.now()
            )
        if self.value() == "failed":
            return queryset.filter(pk__in=payouts.stuck_rewards().values("pk"))
        return queryset


@admin.register(Reward)
class RewardAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "beneficiary",
        "campaign",
        "rule",
        "kind",
        "amount",
        "points",
        "status",
        "hold_reason",
        "payable_at",
        "created_at",
    ]
    list_filter = ["status", PayableFilter, "kind", "campaign", "rule", "hold_reason"]
    list_select_related = ["beneficiary", "campaign", "rule"]
    search_fields = ["=beneficiary__openid", "=source"]
    readonly_fields = [f.name for f in Reward._meta.fields]
    actions = ["approve", "reject", "make_payout_batch", "hold", "release"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False  # rewards are granted by rules, never typed in

    def has_approve_permission(self, request) -> bool:
        return request.user.has_perm("referrals.approve_reward")  # Finance approvers

    def has_hold_permission(self, request) -> bool:
        return request.user.has_perm("referrals.hold_reward")  # Fraud reviewers

    def _each(self, request, queryset, service, verb: str) -> None:
        run_each(
            self,
            request,
            queryset.values_list("pk", flat=True),
            lambda pk: service(reward_id=pk, by=request.user, note=f"{verb} in the admin"),
            lambda done: f"{verb}: {len(done)} reward(s).",
        )

    @admin.action(description="Hold for a fraud review", permissions=["hold"])
    def hold(self, request, queryset):
        self._each(request, queryset, rewards.reward_hold, "Held for review")

    @admin.action(description="Release from the fraud review", permissions=["hold"])
    def release(self, request, queryset):
        self._each(request, queryset, rewards.reward_release, "Released")

    def _move(self, request, queryset, to: str, verb: str) -> None:
        self._each(request, queryset, lambda **kwargs: rewards.reward_move(to=to, **kwargs), verb)

    @admin.action(description="Approve (payable)", permissions=["approve"])
    def approve(self, request, queryset):
        self._move(request, queryset, Reward.Status.APPROVED, "Approved")

    @admin.action(description="Reject (releases the budget)", permissions=["approve"])
    def reject(self, request, queryset):
        self._move(request, queryset, Reward.Status.REJECTED, "Rejected")

    @admin.action(
        description="Make a payout batch of the approved cash rewards selected", permissions=["approve"]
    )
    def make_payout_batch(self, request, queryset):
        try:
            batch = payouts.payout_batch_create(
                by=request.user,
                name=f"Batch by {request.user} at {timezone.now():%Y-%m-%d %H:%M}",
                reward_ids=list(queryset.values_list("pk", flat=True)),
            )
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(
            request,
            f"Made “{batch}” with {batch.payouts.count()} payout(s); another finance "
            "approver must approve it.",
            messages.SUCCESS,
        )


class PayoutInline(admin.TabularInline):
    model = Payout
    extra = 0
    fields = [
        "out_bill_no",
        "reward",
        "attempt",
        "amount_fen",
        "offset_fen",
        "status",
        "provider_state",
        "fail_reason",
        "deliveries",
    ]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(PayoutBatch)
class PayoutBatchAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "created_by", "approved_by", "created_at", "approved_at"]
    list_select_related = ["created_by", "approved_by"]
    list_filter = ["status"]
    readonly_fields = ["name", "status", "created_by", "approved_by", "created_at", "approved_at"]
    inlines = [PayoutInline]
    actions = ["approve_and_send", "discard"]

    def has_add_permission(self, request):
        return False  # made from approved rewards (Rewards → “Make a payout batch”)

    def has_delete_permission(self, request, obj=None):
        return False  # a draft is discarded with its action; a sent batch is kept for good

    @admin.action(
        description="Discard draft batches (their rewards go into the next batch)", permissions=["change"]
    )
    def discard(self, request, queryset):
        run_each(
            self,
            request,
            queryset.values_list("pk", flat=True),
            lambda pk: payouts.payout_batch_discard(batch_id=pk, by=request.user),
            lambda freed: f"Discarded; {sum(freed)} reward(s) can be batched again.",
        )

    @admin.action(description="Approve and send (not your own batch)", permissions=["change"])
    def approve_and_send(self, request, queryset):
        run_each(
            self,
            request,
            queryset.values_list("pk", flat=True),
            lambda pk: payouts.payout_batch_approve(batch_id=pk, by=request.user),
            lambda done: f"Approved {len(done)} batch(es); the payouts are being sent.",
        )


@admin.register(Payout)
class PayoutAdmin(admin.ModelAdmin):
    """Every transfer attempt. Parked ones need a person: ask WeChat Pay again, or, once the
    merchant platform shows the bill moved no money, mark it failed so it can be paid again."""

    list_display = [
        "out_bill_no",
        "batch",
        "reward",
        "attempt",
        "amount_fen",
        "offset_fen",
        "status",
        "provider_state",
        "fail_reason",
        "updated_at",
    ]
    list_filter = ["status", "provider_state"]
    list_select_related = ["batch", "reward"]
    search_fields = ["=out_bill_no", "=transfer_bill_no", "=openid"]
    readonly_fields = [f.name for f in Payout._meta.fields]
    actions = ["recheck", "mark_failed"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_approve_permission(self, request) -> bool:
        return request.user.has_perm("referrals.approve_reward")

    @admin.action(description="Ask WeChat Pay again (parked or stuck payouts)", permissions=["approve"])
    def recheck(self, request, queryset):
        run_each(
            self,
            request,
            queryset.values_list("pk", flat=True),
            lambda pk: payouts.payout_recheck(payout_id=pk),
            lambda done: f"Applied WeChat Pay's answer to {len(done)} payout(s).",
        )

    @admin.action(
        description="Mark failed: the merchant platform shows no money moved (parked only)",
        permissions=["approve"],
    )
    def mark_failed(self, request, queryset):
        run_each(
            self,
            request,
            queryset.values_list("pk", flat=True),
            lambda pk: payouts.payout_mark_failed(
                payout_id=pk, by=request.user, note="checked in the merchant platform"
            ),
            lambda done: f"Marked {len(done)} payout(s) failed; their rewards go into the next batch.",
        )


@admin.register(Reconciliation)
class ReconciliationAdmin(admin.ModelAdmin):
    list_display = ["day", "checked", "difference_count", "ran_at"]
    readonly_fields = ["day", "checked", "differences_table", "ran_at"]
    fields = readonly_fields
    actions = ["run_again"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="Differences")
    def difference_count(self, obj) -> int:
        return len(obj.differences)

    @admin.display(description="Differences")
    def differences_table(self, obj):
        if not obj.differences:
            return "None: every payout matches WeChat Pay's record."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((d["out_bill_no"], d["ours"], d["theirs"], d["note"]) for d in obj.differences),
        )
        return format_html(
            "<table><tr><th>bill</th><th>ours</th><th>WeChat Pay</th><th>note</th></tr>{}</table>", rows
        )

    @admin.action(description="Reconcile the same day again", permissions=["view"])
    def run_again(self, request, queryset):
        for day in sorted(set(queryset.values_list("day", flat=True))):
            run = payouts.payouts_reconcile(day=day)
            self.message_user(
                request, f"{run}.", messages.SUCCESS if not run.differences else messages.WARNING
            )


class CouponUploadForm(forms.Form):
    rule = forms.ModelChoiceField(
        queryset=RewardRule.objects.filter(kind=RewardRule.Kind.COUPON).select_related("campaign"),
        help_text="The coupon rule whose bank gets the codes.",
    )
    file = forms.FileField(required=False, help_text="A .txt or .csv file: one code per line (first column).")
    codes = forms.CharField(widget=forms.Textarea, required=False, help_text="Or paste the codes here.")

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload is not None:
            if upload.size > 8 * 1024 * 1024:
                raise forms.ValidationError("The file is over 8 MB; split it.")
            try:
                data["text"] = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise forms.ValidationError("The file is not UTF-8 text.") from exc
        else:
            data["text"] = data.get("codes") or ""
        if not data["text"].strip():
            raise forms.ValidationError("Choose a file or paste the codes.")
        return data


@admin.register(CouponCode)
class CouponCodeAdmin(admin.ModelAdmin):
    """The code banks of coupon rules. Codes are added by upload and given out by grants."""

    list_display = ["code", "rule", "reward", "uploaded_at"]
    list_filter = [("reward", admin.EmptyFieldListFilter), "rule"]
    list_select_related = ["rule", "reward"]
    search_fields = ["=code"]
    readonly_fields = ["rule", "code", "reward", "uploaded_at"]
    change_list_template = "admin/referrals/couponcode/change_list.html"
    show_full_result_count = False

    def has_add_permission(self, request):
        return False  # uploaded in bulk (the “Upload codes” button)

    def get_urls(self):
        from django.urls import path

        return [
            path("upload/", self.admin_site.admin_view(self.upload_view), name="referrals_couponcode_upload"),
            *super().get_urls(),
        ]

    def upload_view(self, request):
        from django.core.exceptions import PermissionDenied
        from django.shortcuts import redirect
        from django.template.response import TemplateResponse

        if not request.user.has_perm("referrals.add_couponcode"):
            raise PermissionDenied
        form = CouponUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                result = coupons.coupon_codes_upload(
                    rule_id=form.cleaned_data["rule"].pk, text=form.cleaned_data["text"]
                )
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(
                    request,
                    f"Added {result['added']} code(s) ({result['duplicates']} already in the bank); "
                    f"{result['free']} free.",
                    messages.SUCCESS,
                )
                return redirect("admin:referrals_couponcode_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": "Upload coupon codes",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/referrals/couponcode/upload.html", context)


from . import fraud_admin  # noqa: E402, F401 - the fraud review queue registers itself
