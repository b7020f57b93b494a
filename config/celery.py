"""The Celery app. Tasks are found in each app's tasks.py; the beat schedule is in settings."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

app = Celery("fission")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
