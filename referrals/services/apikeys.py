"""Server API keys for the business backend."""

from django.db import transaction
from django.utils import timezone

from referrals.models import ApiKey


@transaction.atomic
def api_key_create(*, name: str, by) -> tuple[ApiKey, str]:
    """A new key; returns it with the raw key, which is shown once and never stored."""
    raw, prefix, salt, digest = ApiKey.generate()
    key = ApiKey.objects.create(name=name, prefix=prefix, salt=salt, key_hash=digest, created_by=by)
    return key, raw


def api_keys_revoke(*, key_ids: list[int]) -> int:
    """Revoke keys at once. Idempotent: a revoked key keeps its first revocation time."""
    return ApiKey.objects.filter(pk__in=key_ids, revoked_at__isnull=True).update(revoked_at=timezone.now())
