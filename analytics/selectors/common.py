"""Small helpers shared by the selectors."""

import math
from datetime import date, datetime
from decimal import Decimal

from django.db import connection

from ..models import CampaignCounter

CENT = Decimal("0.01")


def counter_of(campaign) -> CampaignCounter:
    """The campaign's counter row, or an unsaved zero row when it was never folded."""
    return CampaignCounter.objects.filter(pk=campaign.pk).first() or CampaignCounter(campaign_id=campaign.pk)


def iso(value: datetime | None, campaign) -> str | None:
    return value.astimezone(campaign.tz).isoformat() if value else None


def as_of(counter: CampaignCounter, campaign) -> str | None:
    return iso(counter.folded_at, campaign)


def ratio(num, den) -> float | None:
    return float(num) / float(den) if den else None


def money(value) -> Decimal:
    return (Decimal(value) if value is not None else Decimal(0)).quantize(CENT)


def rows(sql: str, params) -> list[tuple]:
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def epoch_day(key: int) -> date:
    return date.fromordinal(date(1970, 1, 1).toordinal() + key)


def percentile(histogram: list[tuple[int, int]], q: float) -> float | None:
    """The q-quantile (nearest rank) of values given as sorted (value, count) pairs."""
    total = sum(count for _, count in histogram)
    if total <= 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for value, count in histogram:
        seen += count
        if seen >= rank:
            return float(value)
    return float(histogram[-1][0])
