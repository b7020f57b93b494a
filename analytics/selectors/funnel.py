"""The ordered funnel share → open → join → valid → retained D7, and its drop-off lists."""

from collections.abc import Iterator
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from ..services.fold import _flags, _params
from .common import as_of, counter_of, iso, percentile, ratio, rows

STEPS = ["share", "open", "join", "valid", "retained_d7"]
LABELS = {
    "share": "Shared the campaign",
    "open": "Opened a friend's link",
    "join": "Joined after opening",
    "valid": "Became a valid new user",
    "retained_d7": "Active on day 7",
}
# analytics_duration metric of the time from the previous step (None: not measured).
# "open": from a sharer's first share to the first open of their links (unit: sharer).
DURATION = {"open": 4, "join": 2, "valid": 3}


def funnel(campaign) -> dict:
    """The campaign's ordered funnel. Unit: participant.

    Steps: `share` = participants with ≥ 1 share event; `open` = participants who opened a
    friend's share link (the share → open conversion is openers per sharer, labelled so);
    `join` = openers who then joined within the window W; `valid` = of those, valid new
    users, valid within W of their first open; `retained_d7` = of those, active on
    calendar day 7 after joining (classic D7). W = the campaign's attribution window.

    Returns::

        {
          "as_of": str,
          "window_hours": int,
          "steps": [
            {
              "step": "share" | "open" | "join" | "valid" | "retained_d7",
              "label": str,              # e.g. "Opened a friend's link"
              "unit": str,               # "participant" (or "openers per sharer" for open)
              "count": int,              # N_j
              "step_conversion": float | None,     # c_j = N_j / N_(j−1) (None for step 1)
              "overall_conversion": float | None,  # C_j = N_j / N_1
              "drop_off": float | None,  # 1 − c_j
              "median_minutes": float | None,      # time from the previous step (minute resolution;
                                                   # open: a sharer's first share → first open of their links)
              "p90_minutes": float | None,
              "estimate_label": "exact" | "forecast",  # forecast: D7 not yet passed for all cohorts
            }, ...
          ],
          "last_effective_users": int,   # N_open × Π c_j: the "new users × each step" estimate
          "estimate_label": "exact" | "forecast",
        }
    """
    counter = counter_of(campaign)
    counts = {
        "share": counter.sharers,
        "open": counter.openers,
        "join": counter.funnel_join,
        "valid": counter.funnel_valid,
        "retained_d7": counter.funnel_d7,
    }
    durations: dict[int, list] = {2: [], 3: [], 4: []}
    for metric, minute, n in rows(
        "SELECT metric, minute, count FROM analytics_duration WHERE campaign_id = %s AND metric IN (2, 3, 4) "
        "AND count <> 0 ORDER BY metric, minute",
        [campaign.pk],
    ):
        durations[metric].append((minute, n))
    # D7 is known for a cohort once its day 7 has passed (campaign time zone).
    today = timezone.now().astimezone(campaign.tz).date()
    last_cohort = rows(
        "SELECT max(cohort_day) FROM analytics_retention WHERE campaign_id = %s AND n = 0 AND classic > 0",
        [campaign.pk],
    )[0][0]
    d7_open = last_cohort is not None and last_cohort + timedelta(days=7) >= today
    steps, previous = [], None
    for step in STEPS:
        n = int(counts[step])
        c = ratio(n, counts[previous]) if previous else None
        hist = durations.get(DURATION.get(step), [])
        steps.append(
            {
                "step": step,
                "label": LABELS[step],
                "unit": "openers per sharer" if step == "open" else "participant",
                "count": n,
                "step_conversion": c,
                "overall_conversion": ratio(n, counts["share"]) if previous else 1.0 if n else None,
                "drop_off": 1 - c if c is not None else None,
                "median_minutes": percentile(hist, 0.5),
                "p90_minutes": percentile(hist, 0.9),
                "estimate_label": "forecast" if step == "retained_d7" and d7_open else "exact",
            }
        )
        previous = step
    # Every step from "open" on is measured on the same nested cohort, so the product of the
    # conversions is exact; it is a forecast while D7 is still unknown for some cohorts.
    product = float(counts["open"])
    for s in steps[2:]:
        product *= s["step_conversion"] or 0.0
    return {
        "as_of": as_of(counter, campaign),
        "window_hours": campaign.attribution_window_hours,
        "steps": steps,
        "last_effective_users": round(product),
        "estimate_label": "forecast" if d7_open else "exact",
    }


# Who reached the previous step but not this one, over the participant rows' flags.
DROPPED = {
    "open": "shares > 0 AND opens_generated = 0",
    "join": "f_open = 1 AND f_join = 0",
    "valid": "f_join = 1 AND f_valid = 0",
    "retained_d7": "f_valid = 1 AND f_d7 = 0",
}


def funnel_dropoffs(campaign, *, step: str, after: int = 0, chunk: int = 2000) -> Iterator[dict]:
    """Participants who reached the step before `step` but not `step` (streamed, for export).

    `step` is one of "open" … "retained_d7" (share has no previous step); "open" lists
    sharers whose links nobody opened. Yields dicts::

        {"participant_id": int, "joined_at": str | None, "first_open_at": str | None,
         "valid_at": str | None, "channel_id": int | None, "referrer_id": int | None,
         "shares": int}
    ordered by participant id, from ids above `after`; rows are read in chunks (constant memory).
    """
    if step not in DROPPED:
        raise ValueError(f"step must be one of {', '.join(DROPPED)}")
    params = {**_params(campaign), "after": after}
    sql = f"""
        SELECT participant_id, joined_at, first_open_at, valid_at, channel_id, referrer_id, shares
        FROM (SELECT a.*, {_flags("a")} FROM analytics_participant a
              WHERE a.campaign_id = %(c)s AND a.participant_id > %(after)s) t
        WHERE {DROPPED[step]} AND participant_id > %(after)s ORDER BY participant_id
    """  # noqa: S608 (fixed SQL text; values go as parameters)
    with connection.chunked_cursor() as cur:
        cur.itersize = chunk
        cur.execute(sql, params)
        while batch := cur.fetchmany(chunk):
            for pid, joined, opened, valid, channel, referrer, shares in batch:
                yield {
                    "participant_id": pid,
                    "joined_at": iso(joined, campaign),
                    "first_open_at": iso(opened, campaign),
                    "valid_at": iso(valid, campaign),
                    "channel_id": channel,
                    "referrer_id": referrer,
                    "shares": shares,
                }
