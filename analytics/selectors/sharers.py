"""Per-sharer value: quadrant, segments, concentration, leaderboard."""

import math
from decimal import Decimal

from referrals.models import FraudCase, Participant, Reward

from .common import as_of, counter_of, money, ratio, rows

LOUD_SHARES, QUIET_SHARES, QUIET_DIRECT = 10, 2, 5  # METRICS.md segment thresholds
SUPER_SHARE = 0.01
NOT_COST = [Reward.Status.REJECTED, Reward.Status.VOIDED]


def sharers(campaign, *, leaderboard_size: int = 20, segment_ids: int = 200) -> dict:
    """Sharers of the campaign (participants with ≥ 1 share event or ≥ 1 valid invitee).

    Segments (METRICS.md): loud_no_yield (shares ≥ 10, direct = 0); quiet_high_yield
    (shares ≤ 2, direct ≥ 5); super_spreaders (top 1% of sharers by downstream valid).

    Returns::

        {
          "as_of": str,
          "sharers": int,
          "quadrant": [                  # exact 2-D histogram: one point per distinct pair
            {"shares": int, "direct_valid": int, "sharers": int},
          ],
          "segments": {
            "loud_no_yield": {"count": int, "participant_ids": [int, ...]},   # first `segment_ids`
            "quiet_high_yield": {"count": int, "participant_ids": [int, ...]},
            "super_spreaders": {"count": int, "participant_ids": [int, ...]},
          },
          "concentration": [             # sharers sorted by direct valid, descending
            {"sharers_share": float, "valid_share": float},  # top x of sharers bring y of valid invitees
          ],
          "leaderboard": [
            {"participant_id": int, "nickname": str, "shares": int, "opens": int,
             "direct_valid": int, "downstream_valid": int, "yield": float | None,
             "reward_cost": Decimal,     # paid + approved + held + pending, net of clawbacks
             "fraud_outcome": "none" | "open" | "cleared" | "confirmed"},
          ],
        }
    """
    counter = counter_of(campaign)
    hist = rows(
        "SELECT shares, direct_valid, sharers FROM analytics_sharer WHERE campaign_id = %s AND sharers > 0 "
        "ORDER BY shares, direct_valid",
        [campaign.pk],
    )
    total = sum(n for _, _, n in hist)
    loud = sum(n for shares, direct, n in hist if shares >= LOUD_SHARES and direct == 0)
    quiet = sum(n for shares, direct, n in hist if shares <= QUIET_SHARES and direct >= QUIET_DIRECT)

    def ids(where: str, order: str = "participant_id") -> list[int]:
        return [
            pid
            for (pid,) in rows(
                f"SELECT participant_id FROM analytics_participant WHERE campaign_id = %s "  # noqa: S608
                f"AND (shares > 0 OR direct_valid > 0) AND {where} ORDER BY {order} LIMIT %s",
                [campaign.pk, segment_ids],
            )
        ]

    top = math.ceil(total * SUPER_SHARE) if total else 0
    spreaders = [
        pid
        for (pid,) in rows(
            "SELECT participant_id FROM analytics_participant "
            "WHERE campaign_id = %s AND downstream_valid > 0 "
            "ORDER BY downstream_valid DESC, participant_id LIMIT %s",
            [campaign.pk, top],
        )
    ]
    # Concentration: sharers ranked by direct valid invitees, the share of all of them the top bring.
    by_direct: dict[int, int] = {}
    for _, direct, n in hist:
        by_direct[direct] = by_direct.get(direct, 0) + n
    valid_total = sum(d * n for d, n in by_direct.items())
    curve, seen, brought = [{"sharers_share": 0.0, "valid_share": 0.0}], 0, 0
    for direct in sorted(by_direct, reverse=True):
        seen += by_direct[direct]
        brought += direct * by_direct[direct]
        curve.append({"sharers_share": seen / total, "valid_share": ratio(brought, valid_total) or 0.0})
    return {
        "as_of": as_of(counter, campaign),
        "sharers": total,
        "quadrant": [{"shares": s, "direct_valid": d, "sharers": n} for s, d, n in hist],
        "segments": {
            "loud_no_yield": {
                "count": loud,
                "participant_ids": ids(f"shares >= {LOUD_SHARES} AND direct_valid = 0") if loud else [],
            },
            "quiet_high_yield": {
                "count": quiet,
                "participant_ids": ids(f"shares <= {QUIET_SHARES} AND direct_valid >= {QUIET_DIRECT}")
                if quiet
                else [],
            },
            "super_spreaders": {"count": len(spreaders), "participant_ids": spreaders[:segment_ids]},
        },
        "concentration": curve,
        "leaderboard": _leaderboard(campaign, leaderboard_size),
    }


def _leaderboard(campaign, size: int) -> list[dict]:
    board = rows(
        "SELECT participant_id, shares, opens_generated, direct_valid, downstream_valid "
        "FROM analytics_participant "
        "WHERE campaign_id = %s AND (shares > 0 OR direct_valid > 0) "
        "ORDER BY direct_valid DESC, shares DESC, participant_id LIMIT %s",
        [campaign.pk, size],
    )
    pids = [r[0] for r in board]
    names = dict(Participant.objects.filter(pk__in=pids).values_list("pk", "nickname"))
    cost: dict[int, Decimal] = {}
    for pid, amount in (
        Reward.objects.filter(campaign_id=campaign.pk, beneficiary_id__in=pids)
        .exclude(status__in=NOT_COST)
        .values_list("beneficiary_id", "amount")
    ):
        cost[pid] = cost.get(pid, Decimal(0)) + amount
    outcome: dict[int, str] = {}
    rank = {"cleared": 1, "open": 2, "confirmed": 3}
    for pid, state in FraudCase.objects.filter(campaign_id=campaign.pk, participant_id__in=pids).values_list(
        "participant_id", "state"
    ):
        if rank[state] > rank.get(outcome.get(pid, ""), 0):
            outcome[pid] = state
    return [
        {
            "participant_id": pid,
            "nickname": names.get(pid, ""),
            "shares": shares,
            "opens": opens,
            "direct_valid": direct,
            "downstream_valid": downstream,
            "yield": ratio(direct, shares),
            "reward_cost": money(cost.get(pid)),
            "fraud_outcome": outcome.get(pid, "none"),
        }
        for pid, shares, opens, direct, downstream in board
    ]
