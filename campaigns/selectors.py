"""Reads of campaigns that are more than a one-line queryset."""

from django.db.models import QuerySet

from .models import Campaign

# What a participant may open: a scheduled campaign shows its start, an ended one says so.
PUBLIC_STATUSES = [
    Campaign.Status.SCHEDULED,
    Campaign.Status.LIVE,
    Campaign.Status.PAUSED,
    Campaign.Status.ENDED,
]


def campaign_list_live() -> QuerySet[Campaign]:
    return Campaign.objects.filter(status=Campaign.Status.LIVE).order_by("ends_at", "id")


def campaign_list_public() -> QuerySet[Campaign]:
    return Campaign.objects.filter(status__in=PUBLIC_STATUSES)
