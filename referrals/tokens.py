"""Signed, expiring access tokens for participants.

A token is `django.core.signing` over {participant id, token version}: no table, no
lookup to verify the signature, and it expires after PARTICIPANT_TOKEN_TTL. Raising a
participant's token_version revokes all their tokens.
"""

from datetime import timedelta

from django.conf import settings
from django.core import signing

SALT = "fission.participant-token"


def ttl() -> timedelta:
    return timedelta(seconds=settings.PARTICIPANT_TOKEN_TTL_SECONDS)


def token_issue(*, participant_id: int, token_version: int) -> str:
    return signing.dumps({"p": participant_id, "v": token_version}, salt=SALT, compress=False)


def token_read(token: str) -> tuple[int, int] | None:
    """(participant id, token version), or None if the token is forged, malformed or expired."""
    try:
        data = signing.loads(token, salt=SALT, max_age=ttl())
    except signing.BadSignature:  # includes SignatureExpired
        return None
    if not isinstance(data, dict) or not isinstance(data.get("p"), int) or not isinstance(data.get("v"), int):
        return None
    return data["p"], data["v"]
