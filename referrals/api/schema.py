"""How the OpenAPI schema describes our two ways of calling the API."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ParticipantTokenScheme(OpenApiAuthenticationExtension):
    target_class = "referrals.api.auth.ParticipantTokenAuthentication"
    name = "participantToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "The token from POST /api/v1/auth/wechat/, as `Authorization: Bearer <token>`.",
        }


class ParticipantTokenEventsScheme(ParticipantTokenScheme):
    """The same bearer token on the event endpoints (a cached revocation check)."""

    target_class = "referrals.api.auth.ParticipantIdAuthentication"
    name = "participantTokenEvents"


class ServerSignatureScheme(OpenApiAuthenticationExtension):
    target_class = "referrals.api.auth.ServerSignatureAuthentication"
    name = "serverSignature"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Fission-Key",
            "description": "A server API key (made in the admin), with X-Fission-Timestamp "
            '(unix seconds) and X-Fission-Signature = hex HMAC-SHA256(key, "<timestamp>.<raw body>").',
        }
