"""Channels and money: CAC after fraud voids, LTV, ROI; fraud cases, rewards and budget."""

from datetime import timedelta
from decimal import Decimal

from django.db.models import Count
from django.utils import timezone

from campaigns.models import Channel
from referrals.models import FraudCase, Reward

from ..services.fold import LTV_DAYS
from .common import as_of, counter_of, money, ratio, rows

ZERO = Decimal("0.00")
NOT_BURN = ("rejected", "voided", "clawed_back")


def channels(campaign) -> dict:
    """Per channel (plus a row for participants who came with no channel).

    Cost = rewards paid net of clawbacks (for invitees who came through the channel) +
    `Channel.spend`. LTV_H = order_paid amounts of valid new users within H = 30 days of
    joining, each order once and net of refunds (folded from the backend's order_paid /
    order_refunded events, properties "order_id" and "amount"; see analytics_order).

    Returns::

        {
          "as_of": str, "ltv_days": int,
          "channels": [
            {"channel_id": int | None, "code": str, "name": str,
             "joins": int, "valid": int,
             "referred_valid": int,      # valid new users who came through the channel with an inviter
             "sharers": int,             # participants who came through the channel and shared
             "invited_valid": int,       # valid new users those sharers invited (any channel)
             "new_users_per_sharer": float | None,   # invited_valid / sharers
             "reward_cost": Decimal, "spend": Decimal, "cost": Decimal,
             "cac": Decimal | None,      # cost / valid (after fraud voids)
             "ltv": Decimal,             # Σ order value within H days of joining, valid users, net of refunds
             "roi": float | None},       # (ltv − cost) / cost
          ],
          "total": {same keys, "channel_id": None, "code": "", "name": "Total"},
        }
    """
    counter = counter_of(campaign)
    names = {c.pk: c for c in Channel.objects.filter(campaign_id=campaign.pk)}
    stats: dict[int, dict] = {}

    def row(cid: int) -> dict:
        if cid not in stats:
            channel = names.get(cid)
            stats[cid] = {
                "channel_id": cid or None,
                "code": channel.code if channel else "",
                "name": channel.name if channel else "(none)",
                "joins": 0,
                "valid": 0,
                "sharers": 0,
                "referred_valid": 0,
                "invited_valid": 0,
                "reward_cost": ZERO,
                "spend": channel.spend if channel else ZERO,
                "ltv": ZERO,
            }
        return stats[cid]

    for cid in names:
        row(cid)
    for cid, joins, valid, sharers, referred, invited, ltv in rows(
        "SELECT channel_id, sum(joins), sum(valid), sum(sharers), sum(referred_valid), sum(invited_valid), "
        "sum(ltv) "
        "FROM analytics_channel_day WHERE campaign_id = %s GROUP BY channel_id",
        [campaign.pk],
    ):
        r = row(cid)
        r.update(joins=int(joins), valid=int(valid), sharers=int(sharers), referred_valid=int(referred))
        r["invited_valid"] = int(invited)
        r["ltv"] = money(ltv)
    for cid, amount in rows(
        "SELECT channel_id, sum(amount) FROM analytics_reward_day WHERE campaign_id = %s "
        "AND status IN ('paid', 'clawed_back') GROUP BY channel_id",
        [campaign.pk],
    ):
        row(cid)["reward_cost"] = money(amount)
    out = [_finish(r) for _, r in sorted(stats.items(), key=lambda kv: (kv[0] == 0, kv[0]))]
    total = {"channel_id": None, "code": "", "name": "Total"}
    for key in ("joins", "valid", "sharers", "referred_valid", "invited_valid"):
        total[key] = sum(r[key] for r in out)
    for key in ("reward_cost", "spend", "ltv"):
        total[key] = money(sum((r[key] for r in out), ZERO))
    return {"as_of": as_of(counter, campaign), "ltv_days": LTV_DAYS, "channels": out, "total": _finish(total)}


def _finish(r: dict) -> dict:
    r["cost"] = money(r["reward_cost"] + r["spend"])
    r["new_users_per_sharer"] = ratio(r["invited_valid"], r["sharers"])
    r["cac"] = money(r["cost"] / r["valid"]) if r["valid"] else None
    r["roi"] = float((r["ltv"] - r["cost"]) / r["cost"]) if r["cost"] else None
    return r


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
    counter = counter_of(campaign)
    cases = dict(
        FraudCase.objects.filter(campaign_id=campaign.pk, state=FraudCase.State.OPEN)
        .values_list("band")
        .annotate(n=Count("id"))
        .values_list("band", "n")
    )
    amounts = dict.fromkeys(Reward.Status.values, ZERO)
    counts = dict.fromkeys(Reward.Status.values, 0)
    burn: dict = {}
    for day, status, amount, n in rows(
        "SELECT day, status, sum(amount), sum(count) FROM analytics_reward_day WHERE campaign_id = %s "
        "GROUP BY day, status ORDER BY day",
        [campaign.pk],
    ):
        amounts[status] = amounts.get(status, ZERO) + amount
        counts[status] = counts.get(status, 0) + int(n)
        burn.setdefault(day, ZERO)
        if status not in NOT_BURN:
            burn[day] += amount
    today = timezone.now().astimezone(campaign.tz).date()
    week = [burn.get(today - timedelta(days=i), ZERO) for i in range(1, 8)]
    rate = money(sum(week, ZERO) / 7)
    left = campaign.budget_total - campaign.budget_reserved - campaign.budget_spent
    return {
        "as_of": as_of(counter, campaign),
        "open_cases": {
            "review": cases.get(FraudCase.Band.REVIEW, 0),
            "decline": cases.get(FraudCase.Band.DECLINE, 0),
            "total": sum(cases.values()),
        },
        "rewards": {
            **{status: money(amounts[status]) for status in Reward.Status.values},
            "counts": counts,
        },
        "budget": {
            "total": campaign.budget_total,
            "reserved": campaign.budget_reserved,
            "spent": campaign.budget_spent,
            "left": left,
        },
        "daily_burn": [
            {"day": day.isoformat(), "amount": money(amount)} for day, amount in sorted(burn.items())
        ],
        "burn_rate_7d": rate,
        "days_of_budget_left": float(left / rate) if rate else None,
    }
