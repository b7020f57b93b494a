import hashlib
import hmac
import secrets

from django.conf import settings
from django.db import models

KEY_PREFIX = "fsk_"


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _master() -> bytes:
    configured = getattr(settings, "FISSION_API_KEY_MASTER", "")
    if configured:
        return configured.encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"fission.api-keys", hashlib.sha256).digest()


class ApiKey(models.Model):
    """A key for the business backend's server-to-server calls.

    The key is shown once. The database keeps its id, a random salt and a hash; the
    key itself is re-derived when needed from the salt and a master secret that lives
    only in the environment (FISSION_API_KEY_MASTER, else derived from SECRET_KEY).
    A copy of the database alone therefore holds no usable key. Callers send only the
    key id (`fsk_<id>`) and sign with the key, so it never travels over the wire.
    """

    name = models.CharField(max_length=80, help_text="Who uses it, e.g. 'Order service (production)'.")
    prefix = models.CharField(max_length=12, unique=True, editable=False)
    salt = models.CharField(max_length=32, editable=False, default="")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "server API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.key_id})"

    @property
    def key_id(self) -> str:
        return f"{KEY_PREFIX}{self.prefix}"

    @staticmethod
    def derive(prefix: str, salt: str) -> str:
        digest = hmac.new(_master(), f"{prefix}:{salt}".encode(), hashlib.sha256).hexdigest()
        return f"{KEY_PREFIX}{prefix}_{digest}"

    @classmethod
    def generate(cls) -> tuple[str, str, str, str]:
        """(raw key, prefix, salt, hash) of a new key. The raw key is shown once."""
        prefix, salt = secrets.token_hex(4), secrets.token_hex(16)
        raw = cls.derive(prefix, salt)
        return raw, prefix, salt, hash_key(raw)

    def raw_key(self) -> str | None:
        """The key, re-derived; None if the master secret changed since it was made."""
        raw = self.derive(self.prefix, self.salt)
        return raw if hmac.compare_digest(hash_key(raw), self.key_hash) else None
