"""K-factor, generations, cycle time, cascades and the viral share of growth."""


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
    return {
        "as_of": None,
        "horizon_days": 7,
        "k_factor": None,
        "amplification": None,
        "by_cohort_day": [],
        "by_generation": [],
        "cycle_time": {"median_hours": None, "p90_hours": None, "count": 0},
        "depth_histogram": [],
        "cascades": [],
        "breadth": 0,
        "branching_factor": None,
        "viral_share": None,
        "referred_valid": 0,
        "valid": 0,
    }
