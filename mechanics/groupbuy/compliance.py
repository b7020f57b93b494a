"""What group buying tells participants (the public rules, from the configuration) and what
it refuses (at save in the admin, and again at launch)."""

from campaigns.models import Campaign

from .models import Deal, yuan

VIRTUAL_FILL_TEXT = (
    "Virtual fill: if a group is at most {n} member(s) short when its time is up, the platform "
    "completes it; the orders go through, but a group completed this way earns no group rewards."
)


def deal_findings(deal: Deal, tiers: list[tuple[int, int]]) -> list[str]:
    """Refusals for one deal and its price tiers [(min members, price fen)], as messages that
    name the check. Pure: the admin form calls it with unsaved values."""
    found = []
    k, capacity = deal.group_size, deal.max_size or deal.group_size
    if not 0 < deal.group_price_fen < deal.original_price_fen:
        found.append("[group_price] The group price must be above 0 and below the original price.")
    if tiers and capacity <= k:
        found.append(
            "[tiers_need_room] Price tiers need room to grow: set “most members” above the K members needed."
        )
    if not tiers and capacity > k:
        found.append(
            "[max_size_without_tiers] More members than K only make sense with price tiers; "
            "add tiers or leave “most members” empty."
        )
    price = deal.group_price_fen
    for min_members, tier_price in sorted(tiers):
        if not k < min_members <= capacity:
            found.append(f"[tier_size] A tier starts above K ({k}) and at most at {capacity} members.")
        if not 0 < tier_price < price:
            found.append(
                f"[tier_price] The price from {min_members} members (¥{yuan(tier_price)}) must be below the "
                f"price of a smaller group (¥{yuan(price)})."
            )
        price = min(price, tier_price)
    if deal.virtual_fill and deal.virtual_fill_max_missing >= k:
        found.append("[virtual_fill_bounds] Virtual fill may add at most K − 1 members: the leader is real.")
    return found


def launch_check(campaign: Campaign) -> list[str]:
    """Registered in campaigns.services.LAUNCH_CHECKS."""
    if campaign.kind != Campaign.Kind.GROUP_BUY:
        return []
    deals = list(campaign.group_deals.filter(is_active=True).prefetch_related("tiers"))
    if not deals:
        return ["[group_buy_needs_deal] A group-buy campaign needs at least one active deal."]
    refusals = []
    for deal in deals:
        tiers = [(t.min_members, t.price_fen) for t in deal.tiers.all()]
        refusals += [f"“{deal}”: {message}" for message in deal_findings(deal, tiers)]
        disclosure = VIRTUAL_FILL_TEXT.format(n=deal.virtual_fill_max_missing)
        if deal.virtual_fill and disclosure not in campaign.reward_rules_text:
            refusals.append(
                f"“{deal}”: [virtual_fill_undisclosed] Virtual fill is on but the public rules do not "
                "say so; save the deal in the admin to regenerate them."
            )
    return refusals


def rules_part(campaign: Campaign) -> list[str]:
    """Registered in referrals.services.compliance.RULES_TEXT_PARTS."""
    if campaign.kind != Campaign.Kind.GROUP_BUY:
        return []
    lines = []
    for deal in campaign.group_deals.filter(is_active=True).prefetch_related("tiers"):
        lines.append(
            f"Group buy “{deal.title}”: ¥{yuan(deal.group_price_fen)} instead of "
            f"¥{yuan(deal.original_price_fen)} when {deal.group_size} people, the leader included, join "
            f"within {deal.hours} hours."
        )
        tiers = list(deal.tiers.all())
        if tiers:
            steps = "; ".join(f"from {t.min_members} people ¥{yuan(t.price_fen)}" for t in tiers)
            lines.append(
                f"The price drops as the group grows ({steps}), up to {deal.capacity} people until the "
                f"time is up. Everyone pays ¥{yuan(deal.group_price_fen)} when joining and is refunded the "
                "difference when the group closes."
            )
        if deal.virtual_fill:
            lines.append(VIRTUAL_FILL_TEXT.format(n=deal.virtual_fill_max_missing))
        else:
            lines.append(
                f"A group that does not reach {deal.group_size} people in time fails, and everyone in it "
                "is refunded in full."
            )
    if lines:
        lines.append(
            "Friends join through the leader's link. Each person joins a group once, and holds a seat "
            "in at most one filling group per item."
        )
    return lines
