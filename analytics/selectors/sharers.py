"""Per-sharer value: quadrant, segments, concentration, leaderboard."""


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
    return {
        "as_of": None,
        "sharers": 0,
        "quadrant": [],
        "segments": {
            name: {"count": 0, "participant_ids": []}
            for name in ("loud_no_yield", "quiet_high_yield", "super_spreaders")
        },
        "concentration": [],
        "leaderboard": [],
    }
