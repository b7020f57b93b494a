"""Who may read the analytics API: staff with analytics.view_cockpit, by session or token."""

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from ..models import ApiToken
from ..services.tokens import token_hash

PERMISSION = "analytics.view_cockpit"


class AnalyticsTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Token <key>` (a key issued in the admin, or by `manage.py analytics_token`)."""

    keyword = "Token"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Give the token as “Authorization: Token <key>”.")
        token = (
            ApiToken.objects.select_related("user")
            .filter(key_hash=token_hash(header[1].decode(errors="replace")))
            .first()
        )
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Unknown or revoked token.")
        if token.last_used_at is None or (timezone.now() - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
        return token.user, token

    def authenticate_header(self, request):
        return self.keyword


class CanViewCockpit(permissions.BasePermission):
    message = "Reading analytics needs the Analysts or Campaign managers role."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.has_perm(PERMISSION))


class AnalyticsTokenScheme(OpenApiAuthenticationExtension):
    target_class = "analytics.api.auth.AnalyticsTokenAuthentication"
    name = "analyticsToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Staff token for BI tools: `Token <key>` "
            "(issue one in the admin under Analytics → API tokens, or with `manage.py analytics_token`).",
        }
