"""Check-in through the API with two participants over several days: streaks, a missed
day, a make-up card, tier rewards once, the daily reward, and each sees only their own."""

import pytest

from mechanics.checkin.models import Checkin, StreakTier
from referrals.models import Event, Referral, Reward


@pytest.fixture
def call(api_as, django_capture_on_commit_callbacks, eager_tasks):
    """POST/GET as a participant, running the reward tasks sent after commit."""

    def send(who, method, path, body=None):
        with django_capture_on_commit_callbacks(execute=True):
            client = api_as(who)
            if method == "get":
                return client.get(path)
            return client.post(path, body or {}, format="json")

    return send


def points(who) -> int:
    return sum(Reward.objects.filter(beneficiary=who).values_list("points", flat=True))


@pytest.mark.django_db
def test_two_participants_check_in_over_days_with_a_makeup(call, daily, clock, sharer, invitee):
    url = f"/api/v1/checkins/{daily.slug}/"
    # day 0: Sam checks in (joining the campaign); Ivy arrives through Sam's link and checks in
    first = call(sharer, "post", url)
    assert first.status_code == 201 and first.json()["streak"] == 1 and first.json()["created"] is True
    code = call(sharer, "post", f"/api/v1/campaigns/{daily.slug}/share-links/").json()["code"]
    assert call(invitee, "post", url, {"code": code}).status_code == 201
    retry = call(invitee, "post", url, {"code": code})
    assert retry.status_code == 200 and retry.json()["created"] is False
    assert Referral.objects.get(campaign=daily, invitee=invitee).inviter_id == sharer.pk

    # day 1: only Sam; day 2: both — Sam reaches the 3-day tier, Ivy starts again
    clock.days(1)
    assert call(sharer, "post", url).json()["streak"] == 2
    clock.days(2)
    third = call(sharer, "post", url).json()
    assert third["streak"] == 3 and third["tiers_reached"] == [3]
    assert call(invitee, "post", url).json()["streak"] == 1

    # Ivy fills day 1 with her make-up card: her streak runs through and she reaches the tier
    day1 = Checkin.objects.get(participant=sharer, streak=2).day.isoformat()
    made = call(invitee, "post", f"{url}makeup", {"day": day1})
    assert made.status_code == 201 and made.json()["makeup"] is True and made.json()["tiers_reached"] == [3]
    assert call(invitee, "post", f"{url}makeup", {"day": day1}).status_code == 200  # a retry, no card used
    assert list(
        Checkin.objects.filter(participant=invitee).order_by("day").values_list("streak", flat=True)
    ) == [
        1,
        2,
        3,
    ]

    # then: daily points for real check-ins, tier points once each, nothing for the inviter
    assert points(sharer) == 3 + 10
    assert points(invitee) == 2 + 10  # the made-up day earns the streak, not the daily point
    assert not Reward.objects.filter(beneficiary=sharer, source__contains=str(invitee.pk)).exists()
    me = call(invitee, "get", f"{url}me").json()
    assert me["checked_in_today"] is True and me["current_streak"] == 3 and me["best_streak"] == 3
    assert me["makeup_cards_left"] == 0 and me["next_tier"] == 7 and me["days_to_next_tier"] == 4
    assert {"days": 3, "reached": True} in me["tiers"]
    month = call(invitee, "get", f"{url}me?month={day1[:7]}").json()
    marked = {d["day"]: (d["checked_in"], d["makeup"]) for d in month["calendar"] if d["checked_in"]}
    assert marked[day1] == (True, True) and list(marked.values()).count((True, False)) >= 1
    # Sam's view is Sam's own
    mine = call(sharer, "get", f"{url}me").json()
    assert mine["makeup_cards_left"] == 1 and mine["current_streak"] == 3
    # and the log has each check-in once
    assert Event.objects.filter(campaign_id=daily.pk, name="checked_in").count() == 5
    assert Event.objects.filter(campaign_id=daily.pk, name="checkin_streak_3").count() == 2
    assert Event.objects.filter(campaign_id=daily.pk, name="checkin_makeup").count() == 1


@pytest.mark.django_db
def test_a_tier_is_earned_once_per_campaign_and_a_missed_day_resets(call, daily, clock, sharer):
    url = f"/api/v1/checkins/{daily.slug}/"
    for day in (0, 1, 2):
        clock.days(day)
        call(sharer, "post", url)
    clock.days(4)  # day 3 missed, and no card used
    assert call(sharer, "post", url).json()["streak"] == 1
    for day in (5, 6):
        clock.days(day)
        last = call(sharer, "post", url).json()
    assert last["streak"] == 3 and last["tiers_reached"] == []
    assert StreakTier.objects.filter(participant=sharer).count() == 1
    assert points(sharer) == 6 + 10


@pytest.mark.django_db
def test_seven_days_in_a_row_reach_the_cash_tier(call, daily, clock, sharer):
    url = f"/api/v1/checkins/{daily.slug}/"
    for day in range(7):
        clock.days(day)
        answer = call(sharer, "post", url).json()
    assert answer["streak"] == 7 and answer["tiers_reached"] == [7]
    cash = Reward.objects.get(beneficiary=sharer, kind="cash")
    assert cash.source == "checkin:streak7" and str(cash.amount) == "1.00"
    assert call(sharer, "get", f"{url}me").json()["next_tier"] is None


@pytest.mark.django_db
def test_days_follow_the_campaign_time_zone(daily, sharer):
    from datetime import UTC, datetime

    from mechanics.checkin import services

    daily.starts_at = datetime(2026, 1, 1, tzinfo=UTC)
    # 15:59 and 16:01 UTC are 23:59 and 00:01 in Shanghai: two days in a row
    before = services.checkin_do(
        campaign=daily, participant=sharer, now=datetime(2026, 3, 1, 15, 59, tzinfo=UTC)
    )
    after = services.checkin_do(
        campaign=daily, participant=sharer, now=datetime(2026, 3, 1, 16, 1, tzinfo=UTC)
    )
    assert str(before["checkin"].day) == "2026-03-01" and str(after["checkin"].day) == "2026-03-02"
    assert after["checkin"].streak == 2
