"""Production settings for benchmarks on one machine: plain HTTP, no throttles, and the
baseline views of bench/baseline.py mounted next to the real API."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-" + "x" * 50)
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("CELERY_BROKER_URL", "memory://")  # benchmarks send no tasks


def _dev_wechatpay() -> None:
    """Benchmarks pay through the local fake WeChat Pay with the dev key set."""
    from fakes.wechatpay import dev_keys

    keys = dev_keys()
    for name, value in {
        "WECHATPAY_MCHID": "1900000109",
        "WECHATPAY_API_KEY": "bench-apiv3-key-0123456789abcdef",
        "WECHATPAY_PRIVATE_KEY_PATH": str(keys.merchant_private_key_path),
        "WECHATPAY_CERT_SERIAL": keys.merchant_cert_serial,
        "WECHATPAY_PUBLIC_KEY_PATH": str(keys.platform_public_key_path),
        "WECHATPAY_PUBLIC_KEY_ID": keys.platform_public_key_id,
    }.items():
        os.environ.setdefault(name, value)


_dev_wechatpay()

from .production import *  # noqa: E402, F403

ROOT_URLCONF = "bench.urls"
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_CLASSES": [],
    "DEFAULT_THROTTLE_RATES": dict.fromkeys(REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "10000000/min"),  # noqa: F405
}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
