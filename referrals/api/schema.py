"""How the OpenAPI schema describes our two ways of calling the API."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ParticipantTokenScheme(OpenApiAuthenticationExtension):
    target_class = "referrals.api.auth.ParticipantTokenAuthentication"
    match_subclasses = True  # ParticipantIdAuthentication takes the same token
    name = "participantToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "The token from POST /api/v1/auth/wechat/, as `Authorization: Bearer <token>`.",
        }


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
