"""Goal burn-up, the last 60 minutes, and the campaign list's progress column."""

from collections import defaultdict
from datetime import datetime, timedelta

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from campaigns.models import Campaign, Channel

from ..models import CampaignCounter
from .common import as_of, counter_of, iso, ratio, rows

# Which minute-rollup name and which counter column each goal metric counts.
SERIES = {
    Campaign.GoalMetric.VALID_USERS: ("$valid", "valid"),
    Campaign.GoalMetric.JOINS: ("join", "joined"),
    Campaign.GoalMetric.SHARES: ("share", "share_events"),
    Campaign.GoalMetric.ORDERS: ("order_paid", "order_events"),
}
RATE_MINUTES = 15


def _minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


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
                                           # (the hour it was reached once N ≥ goal)
          "hours_ahead": float | None,   # > 0 ahead of the straight target line, < 0 behind
          "alert": bool,                 # live, and current rate < required rate
          "alert_text": str,             # human sentence for the banner ("" when no alert)
          "series": [                    # hourly points from start to min(now, end)
              {"t": str, "count": int, "target": float},  # cumulative N at the hour's end, target line
          ],
          "starts_at": str, "ends_at": str, "now": str,
        }
    """
    now = now or timezone.now()
    counter = counter_of(campaign)
    name, column = SERIES.get(campaign.goal_metric, SERIES[Campaign.GoalMetric.VALID_USERS])
    goal = campaign.goal_target
    start, end = campaign.starts_at, campaign.ends_at
    span = (end - start).total_seconds()
    t = min(max(now, start), end)
    hourly = rows(
        "SELECT date_trunc('hour', minute), sum(count) FROM analytics_minute "
        "WHERE campaign_id = %s AND name = %s GROUP BY 1 ORDER BY 1",
        [campaign.pk, name],
    )
    count = int(getattr(counter, column) or 0)
    elapsed = max(0.0, min(1.0, (t - start).total_seconds() / span))
    left_min = max(0.0, (end - now).total_seconds() / 60)
    recent_from = _minute(now) - timedelta(minutes=RATE_MINUTES)
    recent = rows(
        "SELECT coalesce(sum(count), 0) FROM analytics_minute WHERE campaign_id = %s AND name = %s "
        "AND minute >= %s AND minute < %s",
        [campaign.pk, name, recent_from, _minute(now)],
    )[0][0]
    rate = float(recent) / RATE_MINUTES
    required = (goal - count) / left_min if left_min > 0 else None
    if required is not None:
        required = max(0.0, required)

    series, cumulative, reached_at = [], 0, None
    by_hour = {h: int(n) for h, n in hourly}
    hour = start.replace(minute=0, second=0, microsecond=0)
    per_hour_of_day: dict[int, list[int]] = defaultdict(list)
    while hour < t:
        n = by_hour.get(hour, 0)
        cumulative += n
        point_t = min(hour + timedelta(hours=1), t)
        series.append(
            {
                "t": iso(point_t, campaign),
                "count": cumulative,
                "target": round(goal * max(0.0, (point_t - start).total_seconds()) / span, 2),
            }
        )
        if reached_at is None and cumulative >= goal:
            reached_at = point_t
        if hour + timedelta(hours=1) <= now:
            per_hour_of_day[hour.astimezone(campaign.tz).hour].append(n)
        hour += timedelta(hours=1)
    diurnal = float(count)
    hour = _minute(now).replace(minute=0) + timedelta(hours=1)
    if now < end:
        # the rest of the current hour at the current rate, then each hour at its hour-of-day mean
        diurnal += rate * max(0.0, (min(hour, end) - now).total_seconds() / 60)
        while hour < end:
            seen = per_hour_of_day.get(hour.astimezone(campaign.tz).hour)
            fraction = min(1.0, (end - hour).total_seconds() / 3600)
            diurnal += (sum(seen) / len(seen) if seen else rate * 60) * fraction
            hour += timedelta(hours=1)

    if count >= goal:
        finish = reached_at or t
    elif rate > 0:
        finish = now + timedelta(minutes=(goal - count) / rate)
    else:
        finish = None
    on_line_at = start + timedelta(seconds=span * count / goal)
    live = campaign.status == Campaign.Status.LIVE and start <= now < end
    alert = bool(live and required is not None and rate < required)
    return {
        "as_of": as_of(counter, campaign),
        "metric": campaign.goal_metric,
        "goal": goal,
        "count": count,
        "completion": count / goal,
        "elapsed": elapsed,
        "pace_index": (count / goal) / elapsed if elapsed > 0 else None,
        "required_rate_per_min": required,
        "current_rate_per_min": rate,
        "projected_total": int(count + rate * left_min),
        "projected_total_diurnal": round(diurnal),
        "projected_finish": iso(finish, campaign),
        "hours_ahead": round((on_line_at - t).total_seconds() / 3600, 2) if now >= start else None,
        "alert": alert,
        "alert_text": (
            f"The last {RATE_MINUTES} minutes ran at {rate:.1f}/min; the goal needs {required:.1f}/min."
            if alert
            else ""
        ),
        "series": series,
        "starts_at": iso(start, campaign),
        "ends_at": iso(end, campaign),
        "now": iso(now, campaign),
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
    now = now or timezone.now()
    counter = counter_of(campaign)
    end = _minute(now)
    first = end - timedelta(minutes=60)
    minutes = [first + timedelta(minutes=i) for i in range(60)]
    index = {m: i for i, m in enumerate(minutes)}
    by_event: dict[str, list[int]] = {}
    by_channel: dict[int, list[int]] = {}
    total, valid = [0] * 60, [0] * 60
    for minute, channel_id, name, n in rows(
        "SELECT minute, channel_id, name, count FROM analytics_minute "
        "WHERE campaign_id = %s AND minute >= %s AND minute < %s",
        [campaign.pk, first, end],
    ):
        i = index[minute]
        if name == "$valid":
            valid[i] += n
            continue
        by_event.setdefault(name, [0] * 60)[i] += n
        by_channel.setdefault(channel_id, [0] * 60)[i] += n
        total[i] += n
    channels = {c.pk: c for c in Channel.objects.filter(campaign_id=campaign.pk)}
    return {
        "as_of": as_of(counter, campaign),
        "minutes": [iso(m, campaign) for m in minutes],
        "by_event": dict(sorted(by_event.items())),
        "by_channel": [
            {
                "channel_id": cid or None,
                "code": channels[cid].code if cid in channels else "",
                "name": channels[cid].name if cid in channels else "(none)",
                "counts": counts,
            }
            for cid, counts in sorted(by_channel.items())
        ],
        "total": total,
        "valid": valid,
    }


def progress(campaign_ids) -> dict[int, float]:
    """{campaign_id: completion fraction} (N/goal, may exceed 1.0) for the campaign list.

    One query (the counter rows with their campaign's goal); campaigns never folded map to 0.0."""
    ids = [int(cid) for cid in campaign_ids]
    goal = Campaign.objects.filter(pk=OuterRef("pk"))
    out = dict.fromkeys(ids, 0.0)
    for c in CampaignCounter.objects.filter(pk__in=ids).annotate(
        goal_metric=Subquery(goal.values("goal_metric")[:1]),
        goal_target=Subquery(goal.values("goal_target")[:1]),
    ):
        column = SERIES.get(c.goal_metric, SERIES[Campaign.GoalMetric.VALID_USERS])[1]
        out[c.campaign_id] = ratio(getattr(c, column), c.goal_target) or 0.0
    return out
