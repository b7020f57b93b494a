"""Production settings: every secret from the environment, HTTPS everywhere.

`DJANGO_SETTINGS_MODULE=config.settings.production python manage.py check --deploy`
passes with these settings once DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS and the WeChat Pay
keys (WECHATPAY_MCHID, _API_KEY, _PRIVATE_KEY_PATH, _CERT_SERIAL, _PUBLIC_KEY_PATH,
_PUBLIC_KEY_ID) are set.
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

# E-mail goes out by SMTP (EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD,
# EMAIL_USE_TLS, DEFAULT_FROM_EMAIL), unless EMAIL_BACKEND says otherwise.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND") or "django.core.mail.backends.smtp.EmailBackend"
if EMAIL_USE_TLS and EMAIL_USE_SSL:  # noqa: F405
    raise ImproperlyConfigured("Set EMAIL_USE_TLS (STARTTLS, 587) or EMAIL_USE_SSL (port 465), not both.")

if not SECRET_KEY or len(SECRET_KEY) < 50:  # noqa: F405
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY to a random string of at least 50 characters.")

# WeChat Pay API v3 in production: real keys, never the dev key set of var/wechatpay-dev/.
for _name in (
    "WECHATPAY_MCHID",
    "WECHATPAY_API_KEY",
    "WECHATPAY_PRIVATE_KEY_PATH",
    "WECHATPAY_CERT_SERIAL",
    "WECHATPAY_PUBLIC_KEY_PATH",
    "WECHATPAY_PUBLIC_KEY_ID",
):
    if not os.environ.get(_name):
        raise ImproperlyConfigured(
            f"Set {_name}: WeChat Pay needs the merchant's own keys in production (docs/operations.md)."
        )
for _name in ("WECHATPAY_PRIVATE_KEY_PATH", "WECHATPAY_PUBLIC_KEY_PATH"):
    if not os.access(os.environ[_name], os.R_OK):
        raise ImproperlyConfigured(f"{_name}: cannot read {os.environ[_name]}")
if len(WECHATPAY_API_KEY.encode()) != 32:  # noqa: F405
    raise ImproperlyConfigured("WECHATPAY_API_KEY must be the 32-character APIv3 key.")

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
