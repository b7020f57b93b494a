"""Who is calling: a participant (Bearer token) or the business backend (API key + HMAC)."""

import hashlib
import hmac
import re
import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from referrals.models import ApiKey, Participant
from referrals.models.apikey import KEY_PREFIX
from referrals.tokens import token_read


class ParticipantTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>` from POST /api/v1/auth/wechat/."""

    keyword = "Bearer"

    def read_token(self, request) -> tuple[int, int, str] | None:
        """(participant id, token version, token) from a well-signed, unexpired token."""
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0] != self.keyword:
            raise exceptions.AuthenticationFailed("Send the token as `Authorization: Bearer <token>`.")
        read = token_read(parts[1])
        if read is None:
            raise exceptions.AuthenticationFailed("The token is invalid or has expired; log in again.")
        return read[0], read[1], parts[1]

    def authenticate(self, request):
        read = self.read_token(request)
        if read is None:
            return None
        participant_id, version, token = read
        participant = Participant.objects.filter(pk=participant_id).first()
        if participant is None or participant.token_version != version or participant.is_blocked:
            raise exceptions.AuthenticationFailed("The token is no longer valid; log in again.")
        return participant, token

    def authenticate_header(self, request):
        return self.keyword


# participant id → (checked until, token version, blocked). Lets the event endpoints skip a
# query per request; a sign-out or a block reaches this process at once (post_save) and
# the others within TOKEN_STATE_SECONDS.
TOKEN_STATE_SECONDS = 30
_token_state: dict[int, tuple[float, int, bool]] = {}


def token_state_forget(sender=None, instance=None, **kwargs) -> None:
    if instance is None:
        _token_state.clear()
    else:
        _token_state.pop(instance.pk, None)


class ParticipantIdAuthentication(ParticipantTokenAuthentication):
    """The same token, for the hot event endpoints: the principal is a Participant that
    carries only its id (the views there need nothing else), and the check that the
    token is not revoked comes from a short per-process cache."""

    def authenticate(self, request):
        read = self.read_token(request)
        if read is None:
            return None
        participant_id, version, token = read
        now = time.monotonic()
        state = _token_state.get(participant_id)
        if state is None or state[0] < now:
            row = (
                Participant.objects.filter(pk=participant_id)
                .values_list("token_version", "is_blocked")
                .first()
            )
            if row is None:
                raise exceptions.AuthenticationFailed("The token is no longer valid; log in again.")
            state = (now + TOKEN_STATE_SECONDS, row[0], row[1])
            _token_state[participant_id] = state
        if state[1] != version or state[2]:
            raise exceptions.AuthenticationFailed("The token is no longer valid; log in again.")
        return Participant(pk=participant_id, token_version=version), token


class IsParticipant(permissions.BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.user, Participant)


class ServerClient:
    """The business backend, as the authenticated principal of a server call."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key
        self.pk = f"key:{api_key.pk}"


class ServerSignatureAuthentication(authentication.BaseAuthentication):
    """`X-Fission-Key` (the key id, `fsk_<id>`), `X-Fission-Timestamp` (unix seconds) and
    `X-Fission-Signature`: hex HMAC-SHA256 of "<timestamp>.<raw body>" keyed with the key.

    The key itself never travels: a captured request cannot be altered, and cannot be
    replayed after the 5-minute window. Inside the window a replay changes nothing,
    because server events are idempotent by event id.
    """

    def authenticate(self, request):
        key_id = request.META.get("HTTP_X_FISSION_KEY", "")
        if not key_id:
            raise exceptions.NotAuthenticated(
                "Send X-Fission-Key, X-Fission-Timestamp and X-Fission-Signature."
            )
        prefix = key_id.removeprefix(KEY_PREFIX)
        api_key = ApiKey.objects.filter(prefix=prefix[:12], revoked_at__isnull=True).first()
        raw_key = api_key.raw_key() if api_key else None
        if raw_key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        stamp = request.META.get("HTTP_X_FISSION_TIMESTAMP", "")
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            raise exceptions.AuthenticationFailed("X-Fission-Timestamp must be unix seconds.")
        timestamp = int(stamp)
        if abs(time.time() - timestamp) > settings.FISSION_SERVER_SIGNATURE_WINDOW_SECONDS:
            raise exceptions.AuthenticationFailed(
                "The request timestamp is more than 5 minutes from our clock; "
                "check your clock and sign again."
            )
        signature = request.META.get("HTTP_X_FISSION_SIGNATURE", "").lower()
        body = request.body  # raw bytes, read before any parser touches the stream
        if not SIGNATURE_RE.match(signature) or not hmac.compare_digest(
            sign(raw_key, timestamp, body), signature
        ):
            raise exceptions.AuthenticationFailed("The signature does not match the body and timestamp.")
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > timedelta(minutes=1):
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)  # at most once a minute
        return ServerClient(api_key), None

    def authenticate_header(self, request):
        return "Fission-HMAC"


SIGNATURE_RE = re.compile(r"[0-9a-f]{64}\Z")


class IsServer(permissions.BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.user, ServerClient)


def sign(raw_key: str, timestamp: int, body: bytes) -> str:
    """What the business backend computes; used by tests, benchmarks and the docs' example."""
    return hmac.new(raw_key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
