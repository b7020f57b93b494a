"""Settings for the test suite: a real PostgreSQL, the configured broker."""

from .base import *  # noqa: F403

SECRET_KEY = "test-only-key-not-secret-0123456789-abcdefghijklmnopqrstuvwxyz"  # noqa: S105
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": dict.fromkeys(REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "100000/min"),  # noqa: F405
}
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# A queue of their own, so a test worker never takes a task from (or gives one to) a
# `make run` platform that shares the broker.
CELERY_TASK_DEFAULT_QUEUE = "fission-tests"
CELERY_BEAT_SCHEDULE = {}
# Tests serve static files from the apps (no collectstatic step).
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# Fraud scoring asks the (fake) WeChat only in the tests that start one.
FISSION_RISK_RANK_ENABLED = False
# E-mails stay in django.core.mail.outbox (a Celery worker started by a test keeps its own).
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
