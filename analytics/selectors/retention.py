"""The retention matrix D1 … D30 by cohort day."""

KINDS = ("classic", "on_or_after", "cumulative")
BASES = ("calendar", "rolling")


def retention(campaign, *, kind: str = "classic", basis: str = "calendar", days: int = 30) -> dict:
    """Retention of valid new users by the day they joined (campaign time zone).

    kind: "classic" R_N = active on day d+N; "on_or_after" R≥N = active on some day ≥ d+N;
    "cumulative" R≤N = active on some day in d+1 … d+N. basis: "calendar" (days of the
    campaign's zone) or "rolling" (24 h periods from the join time). Active = at least one
    event other than the join. `days` ≤ 30.

    Returns::

        {
          "as_of": str, "kind": str, "basis": str, "days": int,
          "cohorts": [
            {
              "day": "2027-02-03",        # cohort day
              "size": int,                # |C_d|
              "cells": [                  # N = 1 … days
                {"n": 1, "count": int, "rate": float | None, "incomplete": bool}, ...
              ],
            }, ...
          ],
          "average": [                    # cohort-size-weighted over complete cells only
            {"n": 1, "rate": float | None, "cohorts": int}, ...
          ],
        }
    A cell is incomplete when its day (calendar) or 24 h period (rolling) has not fully
    passed for the whole cohort; its count is what is known so far.
    """
    return {"as_of": None, "kind": kind, "basis": basis, "days": days, "cohorts": [], "average": []}
