from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle

from referrals.models import Participant


class ParticipantRateThrottle(SimpleRateThrottle):
    """Per participant, whatever address they come from."""

    scope = "participant"

    def get_cache_key(self, request, view):
        if isinstance(request.user, Participant):
            return self.cache_format % {"scope": self.scope, "ident": request.user.pk}
        return None


class LoginRateThrottle(AnonRateThrottle):
    """Per client address (NUM_PROXIES decides which address that is)."""

    scope = "login"


class ServerRateThrottle(SimpleRateThrottle):
    scope = "server"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": getattr(request.user, "pk", "anon")}
