"""Reads for the mini program: my streak and my calendar."""

import calendar
from datetime import date, timedelta

from django.db.models import Max
from django.utils import timezone

from campaigns.models import Campaign
from referrals.models import Participant

from .models import Checkin, CheckinPlan, StreakTier
from .services import local_day


def streak_summary(
    *, campaign: Campaign, plan: CheckinPlan, participant: Participant, month: date | None = None
) -> dict:
    """Today's state, the current and best streak, tiers, make-up cards and one month's
    calendar (the campaign's local days)."""
    today = local_day(campaign, timezone.now())
    month = (month or today).replace(day=1)
    mine = Checkin.objects.filter(campaign=campaign, participant=participant)
    recent = {c.day: c for c in mine.filter(day__gte=today - timedelta(days=1), day__lte=today)}
    alive = recent.get(today) or recent.get(today - timedelta(days=1))
    current = alive.streak if alive else 0
    reached = set(
        StreakTier.objects.filter(campaign=campaign, participant=participant).values_list("days", flat=True)
    )
    upcoming = [d for d in plan.tiers if d not in reached and d > current]
    last_day = month.replace(day=calendar.monthrange(month.year, month.month)[1])
    days = {c.day: c for c in mine.filter(day__gte=month, day__lte=last_day)}
    used = mine.filter(is_makeup=True).count()
    earliest = max(today - timedelta(days=plan.makeup_window_days), local_day(campaign, campaign.starts_at))
    return {
        "campaign": campaign.slug,
        "today": today,
        "checked_in_today": today in recent,
        "current_streak": current,
        "best_streak": mine.aggregate(best=Max("streak"))["best"] or 0,
        "tiers": [{"days": d, "reached": d in reached} for d in plan.tiers],
        "next_tier": upcoming[0] if upcoming else None,
        "days_to_next_tier": (upcoming[0] - current) if upcoming else None,
        "makeup_cards_left": max(plan.makeup_cards - used, 0),
        "makeup_from": earliest if plan.makeup_cards else None,
        "month": month.strftime("%Y-%m"),
        "calendar": [
            {
                "day": d,
                "checked_in": d in days,
                "makeup": d in days and days[d].is_makeup,
            }
            for d in (month + timedelta(days=i) for i in range((last_day - month).days + 1))
        ],
    }
