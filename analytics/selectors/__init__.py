"""Metric reads for the cockpit, the staff API and the exports (definitions: METRICS.md).

Every function reads the derived tables that `analytics.services.fold` keeps at most a
few seconds behind the event log; none scans the raw log. Conventions of every returned
dict:

- times are ISO 8601 strings in the campaign's time zone (`Campaign.time_zone`), e.g.
  "2027-02-03T14:05:00+08:00"; days are ISO dates ("2027-02-03") of that zone;
- money is `decimal.Decimal` in yuan with 2 places (the API renders it as a string);
- rates and conversions are `float` fractions (0.25 = 25%), or None when the
  denominator is zero; counts are `int`; durations are stated in their key
  (`_minutes`, `_hours`, `_s`);
- "valid" always means a *valid new user* as METRICS.md defines it: first join in
  [starts_at, ends_at), no membership of another campaign before starts_at, valid_at
  set, and not voided by fraud review (the participant or their direct inviter has a
  confirmed fraud case in this campaign);
- every dict carries "as_of" (the time the derived tables were folded up to) so a page
  can say how fresh it is.
"""

from .channels import channels, reviews_and_money
from .funnel import funnel, funnel_dropoffs
from .pacing import goal_pacing, last_hour, progress
from .retention import retention
from .sharers import sharers
from .virality import virality

__all__ = [
    "channels",
    "funnel",
    "funnel_dropoffs",
    "goal_pacing",
    "last_hour",
    "progress",
    "retention",
    "reviews_and_money",
    "sharers",
    "virality",
]
