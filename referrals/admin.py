"""Participants, the invite tree and server API keys, for ops staff."""

from django.contrib import admin, messages
from django.utils import timezone

from .models import ApiKey, Participant, Referral, ShareLink


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
    ]
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
        if not change:
            raw, obj.prefix, obj.salt, obj.key_hash = ApiKey.generate()
            obj.created_by = request.user
            super().save_model(request, obj, form, change)
            self.message_user(
                request,
                f"The key for “{obj.name}” is {raw} — copy it now: it is not stored and cannot be shown "
                f"again. Send “{obj.key_id}” as X-Fission-Key and sign with the key.",
                messages.WARNING,
            )
            return
        super().save_model(request, obj, form, change)

    @admin.action(description="Revoke (calls with it are refused at once)", permissions=["change"])
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)
