"""Staff API tokens for BI tools."""

import hashlib
import secrets

from django.db import transaction

from ..models import ApiToken


def token_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def api_token_issue(*, user, name: str) -> tuple[ApiToken, str]:
    """A new token for `user`; returns it with the key, which is not stored and not shown again."""
    key = secrets.token_urlsafe(32)
    return ApiToken.objects.create(user=user, name=name[:80], key_hash=token_hash(key)), key
