"""Local settings for `make run` and `manage.py` on a developer's machine."""

import secrets

from config.env import VAR_DIR, env_bool

from .base import *  # noqa: F403

DEBUG = env_bool("DJANGO_DEBUG", True)


def _local_secret_key() -> str:
    # A key kept under var/ so that sessions survive a restart; never used in production.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = SECRET_KEY or _local_secret_key()  # noqa: F405
