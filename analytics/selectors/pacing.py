"""Goal burn-up, the last 60 minutes, and the campaign list's progress column."""

from datetime import datetime


def goal_pacing(campaign, *, now: datetime | None = None) -> dict:
    """Goal burn-up of `campaign` at `now` (default: the current time).

    The counted metric is the campaign's `goal_metric`: valid new users (default), joins,
    share events or paid orders. Returns::

        {
          "as_of": str,                  # ISO time the tables were folded up to
          "metric": "valid_users",       # Campaign.goal_metric
          "goal": int,                   # Campaign.goal_target
          "count": int,                  # N(t): persons (or events for shares/orders)
          "completion": float,           # N / goal, e.g. 1.034 (show as 103.4%)
          "elapsed": float,              # τ = (t − start)/(end − start), clamped to [0, 1]
          "pace_index": float | None,    # (N/goal)/τ; > 1 ahead of plan; None before the start
          "required_rate_per_min": float | None,  # (goal − N)/(end − t), None once ended
          "current_rate_per_min": float, # mean of the last 15 complete minute buckets
          "projected_total": int,        # N + current rate × (end − t)
          "projected_total_diurnal": int,  # N + Σ remaining hours × mean of that hour of day so far
          "projected_finish": str | None,  # ISO time N reaches the goal at the current rate
          "hours_ahead": float | None,   # > 0 ahead of the straight target line, < 0 behind
          "alert": bool,                 # live, and current rate < required rate
          "alert_text": str,             # human sentence for the banner ("" when no alert)
          "series": [                    # hourly points from start to min(now, end)
              {"t": str, "count": int, "target": float},  # cumulative N and the target line
          ],
          "starts_at": str, "ends_at": str, "now": str,
        }
    """
    return {
        "as_of": None,
        "metric": campaign.goal_metric,
        "goal": campaign.goal_target,
        "count": 0,
        "completion": 0.0,
        "elapsed": 0.0,
        "pace_index": None,
        "required_rate_per_min": None,
        "current_rate_per_min": 0.0,
        "projected_total": 0,
        "projected_total_diurnal": 0,
        "projected_finish": None,
        "hours_ahead": None,
        "alert": False,
        "alert_text": "",
        "series": [],
        "starts_at": None,
        "ends_at": None,
        "now": None,
    }


def last_hour(campaign, *, now: datetime | None = None) -> dict:
    """Minute-by-minute event counts of the 60 complete minutes before `now`.

    Returns::

        {
          "as_of": str,
          "minutes": [str, ...],         # 60 ISO minute starts, oldest first
          "by_event": {"join": [int × 60], "share": [...], "open": [...], ...},
          "by_channel": [                # one per channel seen, plus "(none)" for direct traffic
              {"channel_id": int | None, "code": str, "name": str, "counts": [int × 60]},
          ],
          "total": [int × 60],           # all events per minute
          "valid": [int × 60],           # valid new users per minute (by valid_at), net of voids
        }
    """
    return {"as_of": None, "minutes": [], "by_event": {}, "by_channel": [], "total": [], "valid": []}


def progress(campaign_ids) -> dict[int, float]:
    """{campaign_id: completion fraction} (N/goal, may exceed 1.0) for the campaign list.

    One query over the per-campaign counter rows; campaigns never folded map to 0.0."""
    return {int(cid): 0.0 for cid in campaign_ids}
