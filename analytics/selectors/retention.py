"""The retention matrix D1 … D30 by cohort day."""

from datetime import datetime, time, timedelta

from django.utils import timezone

from .common import as_of, counter_of, ratio, rows

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
    if kind not in KINDS or basis not in BASES:
        raise ValueError(f"kind must be one of {KINDS} and basis one of {BASES}")
    days = max(1, min(int(days), 30))
    counter = counter_of(campaign)
    tz = campaign.tz
    now = timezone.now()
    today = now.astimezone(tz).date()
    matrix: dict = {}
    for day, n, classic, last, first in rows(
        "SELECT cohort_day, n, classic, last_active, first_active FROM analytics_retention "
        "WHERE campaign_id = %s AND basis = %s ORDER BY cohort_day, n",
        [campaign.pk, BASES.index(basis) + 1],
    ):
        matrix.setdefault(day, {})[n] = (classic, last, first)
    counts: dict = {}
    for day, cells in matrix.items():
        size = cells.get(0, (0, 0, 0))[0]
        if kind == "classic":
            counts[day] = (size, {n: cells.get(n, (0, 0, 0))[0] for n in range(1, days + 1)})
            continue
        by_n, running = {}, 0
        # on or after N: users whose last active day is ≥ N; cumulative: whose first return is ≤ N
        order = range(31, 0, -1) if kind == "on_or_after" else range(1, 31)
        for n in order:
            running += cells.get(n, (0, 0, 0))[1 if kind == "on_or_after" else 2]
            by_n[n] = running
        counts[day] = (size, {n: by_n.get(n, 0) for n in range(1, days + 1)})
    cohorts = []
    totals = [[0, 0, 0] for _ in range(days + 1)]  # count, size, cohorts over complete cells
    for day, (size, cells) in sorted(counts.items()):
        if size <= 0:
            continue
        last_join_ends = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz)
        out = []
        for n in range(1, days + 1):
            count = cells.get(n, 0)
            if basis == "calendar":
                incomplete = day + timedelta(days=n) >= today
            else:
                incomplete = now < last_join_ends + timedelta(days=n + 1)
            out.append({"n": n, "count": count, "rate": ratio(count, size), "incomplete": incomplete})
            if not incomplete:
                totals[n][0] += count
                totals[n][1] += size
                totals[n][2] += 1
        cohorts.append({"day": day.isoformat(), "size": size, "cells": out})
    return {
        "as_of": as_of(counter, campaign),
        "kind": kind,
        "basis": basis,
        "days": days,
        "cohorts": cohorts,
        "average": [
            {"n": n, "rate": ratio(totals[n][0], totals[n][1]), "cohorts": totals[n][2]}
            for n in range(1, days + 1)
        ],
    }
