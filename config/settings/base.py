"""Settings shared by every environment. Everything comes from environment variables."""

from datetime import timedelta
from decimal import Decimal

import dj_database_url

from config.env import (
    BASE_DIR,
    VAR_DIR,
    broker_url,
    database_url,
    env_bool,
    env_int,
    env_list,
    env_str,
    filesystem_broker_options,
)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "campaigns",
    "referrals",
    "mechanics.groupbuy",
    "mechanics.pricecut",
    "mechanics.cards",
    "mechanics.invites",
    "mechanics.distribution",
    "mechanics.checkin",
    "analytics",
    "reports",
    "simulator",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Admin brute force: 5 wrong passwords for one username from one address lock that pair
# for 30 minutes. Locking the pair (not the username alone) keeps an attacker from
# locking a real ops user out from elsewhere.
AXES_FAILURE_LIMIT = env_int("FISSION_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("FISSION_LOGIN_COOLOFF_MINUTES", 30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "config.security.client_ip"
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        database_url(),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
# Fail fast when the database is unreachable (healthz, requests) instead of hanging.
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int("DATABASE_CONNECT_TIMEOUT", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# Stored in UTC; the admin shows times in this zone, and each campaign has its own.
TIME_ZONE = env_str("FISSION_TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    # The cockpit's chart library, plotly.min.js, straight from the installed plotly wheel.
    "analytics.cockpit.staticfiles.PackageFileFinder",
]
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "media/"
MEDIA_ROOT = env_str("FISSION_MEDIA_ROOT", str(VAR_DIR / "media"))
# Report exports: private files outside MEDIA_ROOT, downloaded only through a permission-checked view.
FISSION_EXPORTS_ROOT = env_str("FISSION_EXPORTS_ROOT", str(VAR_DIR / "exports"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Request bodies: posters and template backgrounds are the largest uploads.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("FISSION_MAX_BODY_BYTES", 2 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
FISSION_TEMPLATE_MAX_BYTES = env_int("FISSION_TEMPLATE_MAX_BYTES", 5 * 1024 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "config.api.pagination.Pagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.exceptions.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.AnonRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("FISSION_THROTTLE_ANON", "120/min"),
        # Per client address: generous, since many real users share a carrier's NAT address;
        # WeChat itself limits each user to 100 logins a minute.
        "login": env_str("FISSION_THROTTLE_LOGIN", "300/min"),
        "participant": env_str("FISSION_THROTTLE_PARTICIPANT", "600/min"),
        "server": env_str("FISSION_THROTTLE_SERVER", "6000/min"),
    },
    # Behind a reverse proxy, set this to the number of proxies so throttles see the
    # client's address rather than one that a client can forge in X-Forwarded-For.
    "NUM_PROXIES": env_int("FISSION_NUM_PROXIES", 0),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Fission API",
    "DESCRIPTION": "The mini-program API of Fission. Errors always have the shape "
    '`{"code": "...", "message": "...", "fields": {...}}`.',
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "CampaignStatusEnum": "campaigns.models.CampaignStatus",
        "ReferralStatusEnum": "referrals.models.Referral.Status",
        "CampaignKindEnum": "campaigns.models.CampaignKind",
        "RewardKindEnum": "referrals.models.RewardRule.Kind",
        "RewardStatusEnum": "referrals.models.Reward.Status",
    },
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache"
        if not env_str("REDIS_CACHE_URL")
        else "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env_str("REDIS_CACHE_URL", "fission"),
    }
}

# Celery -------------------------------------------------------------------------------
CELERY_BROKER_URL = broker_url()
CELERY_BROKER_TRANSPORT_OPTIONS = (
    filesystem_broker_options() if CELERY_BROKER_URL.startswith("filesystem://") else {}
)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ALWAYS_EAGER = False
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "campaigns-sync-schedule": {
        "task": "campaigns.campaigns_sync_schedule",
        # Campaigns go live and end within a minute of their times.
        "schedule": env_int("FISSION_SCHEDULE_SYNC_SECONDS", 30),
    },
    "referrals-event-partitions": {"task": "referrals.event_partitions_ensure", "schedule": 3600},
    "referrals-event-receipts-prune": {"task": "referrals.event_receipts_prune", "schedule": 3600},
    "referrals-payouts-sweep": {"task": "referrals.payouts_sweep", "schedule": 60},
    "referrals-rewards-sweep": {"task": "referrals.rewards_sweep", "schedule": 600},
    "referrals-rewards-expire": {"task": "referrals.rewards_expire", "schedule": 3600},
    "referrals-fraud-score": {"task": "referrals.fraud_score", "schedule": 60},
    "referrals-fraud-rings": {"task": "referrals.fraud_rings", "schedule": 600},
    "referrals-payouts-reconcile": {"task": "referrals.payouts_reconcile", "schedule": 24 * 3600},
    "groupbuy-groups-close-due": {"task": "groupbuy.groups_close_due", "schedule": 60},
    "pricecut-tasks-expire-due": {"task": "pricecut.tasks_expire_due", "schedule": 60},
    # Scheduled daily reports (each written once on its local day) and exports whose worker died.
    "reports-exports-beat": {"task": "reports.exports_beat", "schedule": 60},
    "distribution-bindings-expire": {"task": "distribution.bindings_expire", "schedule": 600},
    # The cockpit's tables stay a few seconds behind the event log (one writer per campaign).
    "analytics-fold": {
        "task": "analytics.fold_live_campaigns",
        "schedule": env_int("FISSION_ANALYTICS_FOLD_SECONDS", 5),
    },
    "invites-tiers-sweep": {"task": "invites.invite_tiers_sweep", "schedule": 60},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("FISSION_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        # Never raise these to DEBUG in production: request logs would carry tokens.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

ADMIN_URL = env_str("FISSION_ADMIN_URL", "admin/")
FISSION_PUBLIC_BASE_URL = env_str("FISSION_PUBLIC_BASE_URL", "http://127.0.0.1:8000")
# A TrueType/OpenType font with CJK glyphs (e.g. Noto Sans CJK) for card messages.
FISSION_CARD_FONT_PATH = env_str("FISSION_CARD_FONT_PATH", "")

# E-mail --------------------------------------------------------------------------------
# Scheduled reports tell their recipients when the day's file is ready (reports/notify.py),
# with links built on FISSION_PUBLIC_BASE_URL. Dev prints e-mails on the console; production
# sends them by SMTP. EMAIL_HOST_PASSWORD is never logged (Django's error reports hide it).
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
# A hung mail server must not hold a Celery worker (the task retries later instead).
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Fission <fission@localhost>")
SERVER_EMAIL = env_str("SERVER_EMAIL", DEFAULT_FROM_EMAIL)

# WeChat ------------------------------------------------------------------------------
# Only referrals/wechat.py knows these. Without WECHAT_API_BASE, `make run` starts the
# local fake WeChat server (fakes/wechat.py) and points here.
WECHAT_API_BASE = env_str("WECHAT_API_BASE", "http://127.0.0.1:9101")
WECHAT_APP_ID = env_str("WECHAT_APP_ID", "wxfission0demo0001")
WECHAT_APP_SECRET = env_str("WECHAT_APP_SECRET", "fake-wechat-secret-for-local-use")
WECHAT_TIMEOUT_SECONDS = float(env_str("WECHAT_TIMEOUT_SECONDS", "3"))

# Participants --------------------------------------------------------------------------
PARTICIPANT_TOKEN_TTL_SECONDS = env_int("FISSION_TOKEN_TTL_SECONDS", 7 * 24 * 3600)
FISSION_AVATAR_MAX_BYTES = env_int("FISSION_AVATAR_MAX_BYTES", 2 * 1024 * 1024)
FISSION_EVENTS_MAX_BODY_BYTES = env_int("FISSION_EVENTS_MAX_BODY_BYTES", 1024 * 1024)
FISSION_SERVER_SIGNATURE_WINDOW_SECONDS = 300
# Server API keys are re-derived from this and a per-key salt; unset, it is derived from
# DJANGO_SECRET_KEY (so rotating that key also retires every server API key).
FISSION_API_KEY_MASTER = env_str("FISSION_API_KEY_MASTER")

# WeChat Pay (merchant transfers) ------------------------------------------------------------
# Only referrals/wechatpay.py knows these. Without WECHATPAY_API_BASE, `make run` starts
# the local fake WeChat Pay (fakes/wechatpay.py).
WECHATPAY_API_BASE = env_str("WECHATPAY_API_BASE", "http://127.0.0.1:9102")
# API v3, "微信支付公钥" mode. Unset key paths (dev and tests only: production refuses to
# start) mean the dev key set made once under var/wechatpay-dev/, which the fake uses too.
WECHATPAY_MCHID = env_str("WECHATPAY_MCHID", "1900000109")
# The APIv3 key (32 characters): callbacks are AES-256-GCM encrypted with it.
WECHATPAY_API_KEY = env_str("WECHATPAY_API_KEY", "fake-wechatpay-key-for-local-use")
# The merchant API certificate's private key (apiclient_key.pem) and that certificate's serial.
WECHATPAY_PRIVATE_KEY_PATH = env_str("WECHATPAY_PRIVATE_KEY_PATH", "")
WECHATPAY_CERT_SERIAL = env_str("WECHATPAY_CERT_SERIAL", "")
# The WeChat Pay public key (pub_key.pem) and its id (PUB_KEY_ID_...): answers and callbacks.
WECHATPAY_PUBLIC_KEY_PATH = env_str("WECHATPAY_PUBLIC_KEY_PATH", "")
WECHATPAY_PUBLIC_KEY_ID = env_str("WECHATPAY_PUBLIC_KEY_ID", "")
WECHATPAY_TIMEOUT_SECONDS = float(env_str("WECHATPAY_TIMEOUT_SECONDS", "5"))
# The public https URL of /api/v1/wechatpay/callback, sent with each transfer so WeChat Pay
# reports final states at once (without it the sweeper's queries find them).
WECHATPAY_NOTIFY_URL = env_str("WECHATPAY_NOTIFY_URL", "")
# WeChat Pay allows 100 requests/s; we stay under 50 (49: requests are spaced just before
# they are sent, after signing, so arrivals keep the spacing) across all paying processes.
WECHATPAY_MAX_RPS = float(env_str("WECHATPAY_MAX_RPS", "49"))

# Rewards --------------------------------------------------------------------------------
# Cash one participant may be granted per day across all campaigns (WeChat's red-packet
# default is at most ¥1,000 per user per day).
FISSION_DAILY_ALLOWANCE_PER_PARTICIPANT = Decimal(env_str("FISSION_DAILY_ALLOWANCE_YUAN", "1000.00"))
# WeChat Pay's daily limits, held on our side before a transfer is sent (a payout over them
# waits for the next day instead of being refused by WeChat Pay).
FISSION_PAYOUT_USER_DAILY_YUAN = Decimal(env_str("FISSION_PAYOUT_USER_DAILY_YUAN", "20000.00"))
FISSION_PAYOUT_MERCHANT_DAILY_YUAN = Decimal(env_str("FISSION_PAYOUT_MERCHANT_DAILY_YUAN", "100000.00"))
FISSION_PAYOUT_MAX_ATTEMPTS = env_int("FISSION_PAYOUT_MAX_ATTEMPTS", 3)
# A reward whose hold waits for an event (e.g. "invitee active on day 7") is voided if the
# event has not come after this many days, releasing its budget.
FISSION_REWARD_EVENT_WAIT_DAYS = env_int("FISSION_REWARD_EVENT_WAIT_DAYS", 30)
# Ask WeChat's getUserRiskRank about sharers (fraud scoring); when it fails, their rewards
# are held (fail closed). At most this many lookups per scoring pass.
FISSION_RISK_RANK_ENABLED = env_str("FISSION_RISK_RANK_ENABLED", "true").lower() in ("1", "true", "yes")
FISSION_RISK_RANK_PER_PASS = env_int("FISSION_RISK_RANK_PER_PASS", 200)
