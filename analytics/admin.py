"""Staff API tokens for BI tools, in the admin: issue one (the key is shown once), see and
revoke your own. Found by the admin's autodiscovery (the cockpit's pages under each campaign
are hooked in from ``AnalyticsConfig.ready()`` instead, see ``analytics.cockpit.admin``).

A token acts as its user (``analytics.api.auth``): it reads while the user is active and
holds ``analytics.view_cockpit``. So whoever holds that permission may issue tokens for
themselves, and nobody else's: an add never names a user, and staff see and revoke only their
own tokens (superusers see and revoke all)."""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from .api.auth import PERMISSION
from .models import ApiToken
from .services.tokens import api_token_issue

REFUSED = (
    "Issuing an analytics API token needs the Analysts or Campaign managers role "
    "(permission analytics.view_cockpit): a token reads only what its user may read."
)


def may_issue(user) -> bool:
    """The same test the API applies to the token's user (``CanViewCockpit``)."""
    return user.is_active and user.has_perm(PERMISSION)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "created_at", "last_used_at"]
    list_select_related = ["user"]
    ordering = ["-created_at"]
    show_full_result_count = False
    readonly_fields = ["user", "created_at", "last_used_at"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(user=request.user)

    def get_fields(self, request, obj=None):
        # Issuing asks only for a name; the token is for whoever issues it.
        return ["name"] if obj is None else ["name", *self.readonly_fields]

    # Ownership, not model permissions: every staff member may look after their own tokens.
    def has_module_permission(self, request):
        return request.user.is_superuser or may_issue(request.user)

    def has_view_permission(self, request, obj=None):
        return obj is None or request.user.is_superuser or obj.user_id == request.user.pk

    def has_delete_permission(self, request, obj=None):
        return self.has_view_permission(request, obj)

    def has_add_permission(self, request):
        return may_issue(request.user)

    def has_change_permission(self, request, obj=None):
        return False  # a token is issued and revoked, never edited

    def get_actions(self, request):
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            func, name, _ = actions["delete_selected"]
            actions["delete_selected"] = (func, name, "Revoke selected tokens (their keys stop working)")
        return actions

    def add_view(self, request, form_url="", extra_context=None):
        if not may_issue(request.user):
            self.message_user(request, REFUSED, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:analytics_apitoken_changelist"))
        # One token per issue: the page after saving shows its key.
        buttons = {"show_save_and_add_another": False, "show_save_and_continue": False}
        extra_context = {**buttons, **(extra_context or {})}
        return super().add_view(request, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if change:
            raise AssertionError("API tokens are never changed")  # has_change_permission is False
        token, key = api_token_issue(user=request.user, name=obj.name)
        obj.pk = token.pk  # the admin's log entry names the issued token
        obj.refresh_from_db()
        obj.issued_key = key  # for response_add, in this request's memory only

    def response_add(self, request, obj, post_url_continue=None):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "API token issued",
            "token": obj,
            "key": obj.issued_key,
            "changelist_url": reverse("admin:analytics_apitoken_changelist"),
        }
        # The admin serves every page with never_cache, so no cache keeps this one.
        return TemplateResponse(request, "admin/analytics/apitoken/issued.html", context)

    def delete_view(self, request, object_id, extra_context=None):
        extra_context = {"title": "Revoke this token?", **(extra_context or {})}
        return super().delete_view(request, object_id, extra_context)

    def response_delete(self, request, obj_display, obj_id):
        self.message_user(
            request, f"Revoked “{obj_display}”: its key stops working at once.", messages.SUCCESS
        )
        return HttpResponseRedirect(reverse("admin:analytics_apitoken_changelist"))
