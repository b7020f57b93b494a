"""Reads of cards: a sharer's own cards, and per-template figures for the admin."""

from django.db.models import Count, QuerySet, Sum

from referrals.models import Participant

from .models import Card, CardTemplate


def cards_of_sharer(*, sharer: Participant, campaign_slug: str | None = None) -> QuerySet[Card]:
    rows = Card.objects.filter(sharer=sharer).select_related("campaign", "template", "link", "sharer")
    if campaign_slug:
        rows = rows.filter(campaign__slug=campaign_slug)
    return rows.order_by("-created_at", "-id")


def template_figures(templates: QuerySet[CardTemplate]) -> QuerySet[CardTemplate]:
    """Templates with how many cards were made from them, opened and accepted."""
    return templates.annotate(
        card_count=Count("cards"), open_count=Sum("cards__opens"), accept_count=Sum("cards__accepts")
    )
