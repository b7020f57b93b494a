"""The check-in cast: a live check-in campaign (tiers at 3 and 7 days, one make-up card for
a day within 3 days), a daily point and tier rewards, and a clock that ops can move."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns.models import Campaign
from mechanics.checkin.models import CheckinPlan
from referrals.models import RewardRule

R = RewardRule


def event_rule(campaign, event, **fields) -> RewardRule:
    defaults = {
        "name": event,
        "trigger": R.Trigger.EVENT,
        "trigger_event": event,
        "beneficiary": R.Beneficiary.INVITEE,
        "kind": R.Kind.POINTS,
        "points": 1,
    }
    return RewardRule.objects.create(campaign=campaign, **(defaults | fields))


@pytest.fixture
def daily(make_campaign):
    now = timezone.now()
    campaign = make_campaign(
        slug="daily",
        kind=Campaign.Kind.CHECKIN,
        status=Campaign.Status.LIVE,
        starts_at=now - timedelta(days=2),
        ends_at=now + timedelta(days=30),
    )
    CheckinPlan.objects.create(campaign=campaign, streak_tiers=[3, 7], makeup_cards=1, makeup_window_days=3)
    event_rule(campaign, "checked_in", name="Daily point")
    event_rule(campaign, "checkin_streak_3", name="3 days", points=10)
    event_rule(
        campaign,
        "checkin_streak_7",
        name="7 days",
        kind=R.Kind.CASH,
        points=None,
        amount=Decimal("1.00"),
        hold_hours=0,
    )
    return campaign


class Clock:
    def __init__(self, real):
        self.real = real
        self.offset = timedelta()

    def __call__(self):
        return self.real() + self.offset

    def days(self, n: float) -> None:
        self.offset = timedelta(days=n)


@pytest.fixture
def clock(monkeypatch):
    """timezone.now(), moved by clock.days(n): tomorrow is clock.days(1)."""
    clock = Clock(timezone.now)
    monkeypatch.setattr(timezone, "now", clock)
    return clock
