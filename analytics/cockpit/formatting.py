"""How the cockpit writes numbers: thousands separators, units, the campaign's time zone.

Tables hold `Cell`s: the text a person reads, plus whether it is a number (right-aligned),
a link, or an incomplete value (a retention day that has not fully passed).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

DASH = "–"


@dataclass(frozen=True)
class Cell:
    text: str
    num: bool = False
    href: str = ""
    incomplete: bool = False
    title: str = ""


def num(value, text: str | None = None, **kwargs) -> Cell:
    return Cell(text if text is not None else integer(value), num=True, **kwargs)


def integer(value) -> str:
    if value is None:
        return DASH
    return f"{round(value):,}"


def decimal(value, places: int = 2) -> str:
    if value is None:
        return DASH
    return f"{value:,.{places}f}"


def percent(fraction, places: int = 1) -> str:
    """0.034 -> '3.4%'. None (undefined, e.g. nothing to divide by) -> '–'."""
    if fraction is None:
        return DASH
    return f"{float(fraction) * 100:,.{places}f}%"


def yuan(value) -> str:
    if value is None:
        return DASH
    amount = Decimal(value).quantize(Decimal("0.01"))
    sign = "-" if amount < 0 else ""
    return f"{sign}¥{abs(amount):,.2f}"


def rate(per_minute) -> str:
    if per_minute is None:
        return DASH
    return f"{float(per_minute):,.2f} /min"


def hours(value) -> str:
    """Hours as '+3.5 h' (ahead) / '-2.0 h' (behind)."""
    if value is None:
        return DASH
    return f"{float(value):+,.1f} h"


def duration(value) -> str:
    """A timedelta or a number of seconds as '2 h 05 min' / '4 min 10 s' / '12 s'."""
    if value is None:
        return DASH
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    seconds = round(seconds)
    if seconds >= 86400:
        return f"{seconds / 86400:,.1f} d"
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def local(value: datetime | None, tz, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return DASH
    return timezone.localtime(value, tz).strftime(fmt)
