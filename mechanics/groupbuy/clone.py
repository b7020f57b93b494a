"""A group-buy campaign's deals and their price tiers, copied into its clone (registered in
campaigns.services.CLONE_HOOKS). Groups, their members and the order signals are history:
never copied."""

from campaigns.models import Campaign
from referrals.services.compliance import campaign_rules_text_refresh

from .models import Deal, Tier

DEAL_FIELDS = (
    "item_code",
    "title",
    "original_price_fen",
    "group_price_fen",
    "group_size",
    "max_size",
    "hours",
    "virtual_fill",
    "virtual_fill_max_missing",
    "is_active",
)
DEAL_FIELDS_NOT_COPIED = ("id", "campaign", "created_at", "updated_at")
TIER_FIELDS = ("min_members", "price_fen")
TIER_FIELDS_NOT_COPIED = ("id", "deal")


def group_deals_clone(*, source: Campaign, clone: Campaign) -> None:
    """Copy every deal of `source` (active or not) with its tiers into `clone`, and rewrite
    the clone's public rules, which describe the deals (and disclose virtual fill)."""
    deals = list(Deal.objects.filter(campaign=source).prefetch_related("tiers").order_by("id"))
    if not deals:
        return
    for deal in deals:
        copy = Deal.objects.create(campaign=clone, **{field: getattr(deal, field) for field in DEAL_FIELDS})
        Tier.objects.bulk_create(
            Tier(deal=copy, **{field: getattr(tier, field) for field in TIER_FIELDS})
            for tier in deal.tiers.all()
        )
    campaign_rules_text_refresh(campaign_id=clone.pk)
