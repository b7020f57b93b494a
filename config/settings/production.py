"""Production settings: every secret from the environment, HTTPS everywhere.

`DJANGO_SETTINGS_MODULE=config.settings.production python manage.py check --deploy`
passes with these settings once DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS are set.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int

# No embedded defaults in production: a missing server is a mistake, not a demo.
for _name in ("DATABASE_URL", "CELERY_BROKER_URL"):
    if not os.environ.get(_name):
        raise ImproperlyConfigured(
            f"Set {_name}: production runs on real servers, not the embedded defaults."
        )

from .base import *  # noqa: E402, F403

if not os.environ.get("WECHAT_API_BASE"):
    WECHAT_API_BASE = "https://api.weixin.qq.com"
if not os.environ.get("WECHATPAY_API_BASE"):
    WECHATPAY_API_BASE = "https://api.mch.weixin.qq.com"

if not SECRET_KEY or len(SECRET_KEY) < 50:  # noqa: F405
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY to a random string of at least 50 characters.")

DEBUG = False
# TLS ends at the load balancer, which sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
