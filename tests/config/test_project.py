"""The project as a whole: migrations match the models, checks pass, production is locked down."""

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_no_missing_migrations():
    call_command("makemigrations", "--check", "--dry-run", stdout=StringIO())


def test_system_checks_pass():
    call_command("check", fail_level="WARNING", stdout=StringIO())


def test_check_deploy_passes_with_production_settings():
    from fakes.wechatpay import dev_keys

    keys = dev_keys()  # stand-ins for the merchant's real WeChat Pay keys
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "x7!" + "k" * 30 + "Qz9#" + "m" * 30,
        "DJANGO_ALLOWED_HOSTS": "fission.example.com",
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/0",
        "WECHATPAY_MCHID": "1900000109",
        "WECHATPAY_API_KEY": "0123456789abcdef0123456789abcdef",
        "WECHATPAY_PRIVATE_KEY_PATH": str(keys.merchant_private_key_path),
        "WECHATPAY_CERT_SERIAL": keys.merchant_cert_serial,
        "WECHATPAY_PUBLIC_KEY_PATH": str(keys.platform_public_key_path),
        "WECHATPAY_PUBLIC_KEY_ID": keys.platform_public_key_id,
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", ["DATABASE_URL", "CELERY_BROKER_URL"])
def test_production_refuses_to_start_without_real_servers(missing):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "s" * 60,
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    }
    env.pop(missing, None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert f"Set {missing}" in result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_no_serializer_uses_all_fields():
    offenders = [
        str(path.relative_to(ROOT))
        for app in ("config", "campaigns", "referrals", "analytics")
        for path in (ROOT / app).rglob("*.py")
        if '"__all__"' in path.read_text() or "'__all__'" in path.read_text()
    ]
    assert offenders == []
