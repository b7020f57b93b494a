"""What a price cut tells participants (the public rules) and what it refuses: WeChat wants
the exact remaining amount and the helpers needed shown, and no undisclosed randomness."""

from campaigns.models import Campaign

from .models import Offer, yuan
from .schedule import RANDOM, planned_cuts

MAX_LISTED_CUTS = 10  # a schedule with more steps is described, not listed


def schedule_text(offer: Offer) -> str:
    total, helpers = offer.total_cut_fen, offer.helpers_needed
    if offer.schedule == RANDOM:
        return (
            f"each friend cuts a random amount between ¥{yuan(offer.min_cut_fen)} and "
            f"¥{yuan(offer.max_cut_fen)}, and the last needed friend cuts exactly what is left"
        )
    cuts = planned_cuts(schedule=offer.schedule, total=total, helpers=helpers)
    if len(set(cuts)) == 1:
        return f"each friend cuts ¥{yuan(cuts[0])}"
    if len(cuts) <= MAX_LISTED_CUTS:
        return "the friends cut, in order: " + ", ".join(f"¥{yuan(c)}" for c in cuts)
    return f"the first friend cuts ¥{yuan(cuts[0])}, decreasing to ¥{yuan(cuts[-1])} for the last"


def launch_check(campaign: Campaign) -> list[str]:
    """Registered in campaigns.services.LAUNCH_CHECKS."""
    if campaign.kind != Campaign.Kind.PRICE_CUT:
        return []
    offers = list(campaign.cut_offers.filter(is_active=True))
    if not offers:
        return ["[price_cut_needs_offer] A price-cut campaign needs at least one active offer."]
    return [f"“{offer}”: {message}" for offer in offers for message in offer.findings()]


def rules_part(campaign: Campaign) -> list[str]:
    """Registered in referrals.services.compliance.RULES_TEXT_PARTS."""
    if campaign.kind != Campaign.Kind.PRICE_CUT:
        return []
    lines = []
    for offer in campaign.cut_offers.filter(is_active=True):
        if offer.findings():
            continue  # refused at launch; never publish terms that cannot be kept
        lines.append(
            f"Price cut “{offer.title}”: from ¥{yuan(offer.start_price_fen)} down to "
            f"¥{yuan(offer.floor_price_fen)} with {offer.helpers_needed} friends' help within "
            f"{offer.hours} hours; {schedule_text(offer)}."
        )
        if offer.new_users_only:
            lines.append("Only friends who are new to this campaign may help.")
    if lines:
        lines.append(
            "Each friend helps once per price cut, by joining through your link. The exact amount left "
            "and the number of friends still needed are always shown. A price cut not finished in time "
            "expires: you may start again, from the start price."
        )
    return lines
