"""The real URLs plus the baselines a benchmark compares against (never mounted in production)."""

from django.urls import path

from bench import baseline
from config.urls import urlpatterns as real

urlpatterns = [
    path("bench/copy-events", baseline.copy_events),
    path("bench/insert-one", baseline.InsertOneApi.as_view()),
    *real,
]
