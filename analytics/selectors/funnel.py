"""The ordered funnel share → open → join → valid → retained D7, and its drop-off lists."""

from collections.abc import Iterator

STEPS = ["share", "open", "join", "valid", "retained_d7"]


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
              "median_minutes": float | None,      # time from the previous step (minute resolution)
              "p90_minutes": float | None,
              "estimate_label": "exact" | "forecast",  # forecast: D7 not yet passed for all cohorts
            }, ...
          ],
          "last_effective_users": int,   # N_open × Π c_j: the "new users × each step" estimate
          "estimate_label": "exact" | "forecast",
        }
    """
    return {
        "as_of": None,
        "window_hours": campaign.attribution_window_hours,
        "steps": [
            {
                "step": step,
                "label": step,
                "unit": "participant",
                "count": 0,
                "step_conversion": None,
                "overall_conversion": None,
                "drop_off": None,
                "median_minutes": None,
                "p90_minutes": None,
                "estimate_label": "exact",
            }
            for step in STEPS
        ],
        "last_effective_users": 0,
        "estimate_label": "exact",
    }


def funnel_dropoffs(campaign, *, step: str) -> Iterator[dict]:
    """Participants who reached the step before `step` but not `step` (streamed, for export).

    `step` is one of "open" … "retained_d7" (share has no previous step). Yields dicts::

        {"participant_id": int, "joined_at": str | None, "first_open_at": str | None,
         "valid_at": str | None, "channel_id": int | None, "referrer_id": int | None,
         "shares": int}
    ordered by participant id; rows are read in chunks (constant memory).
    """
    yield from ()
