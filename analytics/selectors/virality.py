"""K-factor, generations, cycle time, cascades and the viral share of growth."""

from ..services.fold import HORIZON_DAYS
from .common import as_of, counter_of, epoch_day, percentile, ratio, rows


def structural_virality(n: int, s1: int, s2: int) -> float | None:
    """Mean distance between all pairs of a cascade of n nodes (Goel et al. 2016), from the sums of
    the non-root subtree sizes s and their squares: ν = 2 Σ s(n − s) / (n(n − 1))."""
    if n < 2:
        return None
    return 2 * (n * s1 - s2) / (n * (n - 1))


def virality(campaign) -> dict:
    """Virality of the campaign. H (attribution horizon) = 7 days.

    Returns::

        {
          "as_of": str, "horizon_days": 7,
          "k_factor": float | None,       # all inviter cohorts: valid invitees joined within H / members
          "amplification": float | None,  # 1/(1 − K) when 0 ≤ K < 1, else None
          "by_cohort_day": [
            {"day": str, "members": int, "sharers": int, "shares": int,
             "valid_invitees": int,        # valid invitees joined within H of their inviter
             "k": float | None, "i": float | None, "c": float | None},  # K = i × c
          ],
          "by_generation": [
            {"generation": int, "joined": int, "valid": int, "k": float | None},  # K_g = N_(g+1)/N_g (valid)
          ],
          "cycle_time": {"median_hours": float | None, "p90_hours": float | None, "count": int},
          "depth_histogram": [{"depth": int, "participants": int}],   # joined participants
          "cascades": [                   # the 10 biggest, by joined size
            {"root_id": int, "size": int, "valid": int, "depth": int,
             "structural_virality": float | None},  # Goel et al.: mean pairwise distance
          ],
          "breadth": int,                 # max N_g (joined)
          "branching_factor": float | None,  # mean children over participants with ≥ 1 child
          "viral_share": float | None,    # referred valid new users / all valid new users
          "referred_valid": int, "valid": int,
        }
    """
    counter = counter_of(campaign)
    by_day, by_generation = [], []
    for kind, key, members, valid, sharers, shares, invitees in rows(
        "SELECT kind, key, members, valid, sharers, shares, valid_invitees_h FROM analytics_viral "
        "WHERE campaign_id = %s ORDER BY kind, key",
        [campaign.pk],
    ):
        if kind == 1:
            by_day.append(
                {
                    "day": epoch_day(key).isoformat(),
                    "members": members,
                    "sharers": sharers,
                    "shares": shares,
                    "valid_invitees": invitees,
                    "k": ratio(invitees, members),
                    "i": ratio(shares, members),
                    "c": ratio(invitees, shares),
                }
            )
        elif members or valid:
            by_generation.append({"generation": key, "joined": members, "valid": valid, "k": None})
    valid_by_gen = {g["generation"]: g["valid"] for g in by_generation}
    for g in by_generation:
        g["k"] = ratio(valid_by_gen.get(g["generation"] + 1, 0), g["valid"])
    cycle = [
        (minute, n)
        for minute, n in rows(
            "SELECT minute, count FROM analytics_duration "
            "WHERE campaign_id = %s AND metric = 1 AND count <> 0 "
            "ORDER BY minute",
            [campaign.pk],
        )
    ]
    median, p90 = percentile(cycle, 0.5), percentile(cycle, 0.9)
    cascades = [
        {
            "root_id": root,
            "size": size,
            "valid": valid,
            "depth": depth,
            "structural_virality": structural_virality(size, s1, s2),
        }
        for root, size, valid, depth, s1, s2 in rows(
            "SELECT root_id, size, valid, max_depth, s1, s2 FROM analytics_cascade WHERE campaign_id = %s "
            "ORDER BY size DESC, root_id LIMIT 10",
            [campaign.pk],
        )
    ]
    k = ratio(counter.valid_invitees_h, counter.joined)
    return {
        "as_of": as_of(counter, campaign),
        "horizon_days": HORIZON_DAYS,
        "k_factor": k,
        "amplification": 1 / (1 - k) if k is not None and 0 <= k < 1 else None,
        "by_cohort_day": by_day,
        "by_generation": by_generation,
        "cycle_time": {
            "median_hours": round(median / 60, 3) if median is not None else None,
            "p90_hours": round(p90 / 60, 3) if p90 is not None else None,
            "count": sum(n for _, n in cycle),
        },
        "depth_histogram": [{"depth": g["generation"], "participants": g["joined"]} for g in by_generation],
        "cascades": cascades,
        "breadth": max((g["joined"] for g in by_generation), default=0),
        "branching_factor": ratio(counter.referred_joined, counter.parents),
        "viral_share": ratio(counter.referred_valid, counter.valid),
        "referred_valid": counter.referred_valid,
        "valid": counter.valid,
    }
