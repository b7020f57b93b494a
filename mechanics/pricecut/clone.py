"""A price-cut campaign's offers, copied into its clone (registered in
campaigns.services.CLONE_HOOKS). Tasks and their helps are history: never copied."""

from campaigns.models import Campaign
from referrals.services.compliance import campaign_rules_text_refresh

from .models import Offer

OFFER_FIELDS = (
    "item_code",
    "title",
    "start_price_fen",
    "floor_price_fen",
    "helpers_needed",
    "schedule",
    "min_cut_fen",
    "max_cut_fen",
    "hours",
    "new_users_only",
    "is_active",
)
OFFER_FIELDS_NOT_COPIED = ("id", "campaign", "created_at", "updated_at")


def cut_offers_clone(*, source: Campaign, clone: Campaign) -> None:
    """Copy every offer of `source` (active or not) into `clone`, and rewrite the clone's
    public rules, which describe the offers."""
    offers = list(Offer.objects.filter(campaign=source).order_by("id"))
    if not offers:
        return
    Offer.objects.bulk_create(
        Offer(campaign=clone, **{field: getattr(offer, field) for field in OFFER_FIELDS}) for offer in offers
    )
    campaign_rules_text_refresh(campaign_id=clone.pk)
