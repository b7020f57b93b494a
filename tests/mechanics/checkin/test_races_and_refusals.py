"""Concurrent check-ins and make-ups with real threads, and every refusal leaves state as
it was."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign
from config.errors import ApplicationError
from mechanics.checkin import services
from mechanics.checkin.models import Checkin, CheckinPlan
from referrals.models import Event


def run_together(n, work):
    barrier = threading.Barrier(n)
    results, errors = [], []

    def one(i):
        try:
            barrier.wait()
            results.append(work(i))
        except ApplicationError as refused:
            results.append(refused.code)
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return results


def checkin_campaign(make_campaign, **plan):
    now = timezone.now()
    campaign = make_campaign(
        kind=Campaign.Kind.CHECKIN,
        status=Campaign.Status.LIVE,
        starts_at=now - timedelta(days=5),
        ends_at=now + timedelta(days=5),
    )
    CheckinPlan.objects.create(campaign=campaign, **plan)
    return campaign


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_check_ins_by_one_person_make_one_row(make_campaign, make_participant):
    campaign = checkin_campaign(make_campaign)
    who = make_participant()

    created = run_together(8, lambda i: services.checkin_do(campaign=campaign, participant=who)["created"])

    assert sorted(created) == [False] * 7 + [True]
    assert Checkin.objects.filter(participant=who).count() == 1
    assert Event.objects.filter(participant_id=who.pk, name="checked_in").count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_makeups_never_use_more_cards_than_given(make_campaign, make_participant):
    campaign = checkin_campaign(make_campaign, makeup_cards=1, makeup_window_days=3)
    who = make_participant()
    services.checkin_do(campaign=campaign, participant=who)
    today = services.local_day(campaign, timezone.now())
    days = [today - timedelta(days=d) for d in (1, 2, 3)]

    outcomes = run_together(
        3, lambda i: services.checkin_makeup(campaign=campaign, participant=who, day=days[i])["created"]
    )

    assert sorted(outcomes, key=str) == [True, "no_makeup_cards_left", "no_makeup_cards_left"]
    assert Checkin.objects.filter(participant=who, is_makeup=True).count() == 1


@pytest.fixture
def url(daily):
    return f"/api/v1/checkins/{daily.slug}/"


def snapshot():
    return (
        list(Checkin.objects.values_list("participant_id", "day", "streak", "is_makeup")),
        Event.objects.filter(name__startswith="check").count(),
    )


@pytest.mark.django_db
def test_makeup_refusals_answer_4xx_and_change_nothing(api_as, daily, url, sharer, invitee):
    Campaign.objects.filter(pk=daily.pk).update(starts_at=timezone.now() - timedelta(days=10))
    daily.refresh_from_db()
    client = api_as(sharer)
    # not joined yet
    yesterday = (services.local_day(daily, timezone.now()) - timedelta(days=1)).isoformat()
    answer = client.post(f"{url}makeup", {"day": yesterday}, format="json")
    assert answer.status_code == 409 and answer.json()["code"] == "join_first"
    client.post(url, {}, format="json")
    before = snapshot()
    today = services.local_day(daily, timezone.now())
    for day, status, code in [
        (today, 400, "makeup_day_invalid"),
        (today + timedelta(days=1), 400, "makeup_day_invalid"),
        (today - timedelta(days=4), 409, "makeup_too_late"),
        (services.local_day(daily, daily.starts_at) - timedelta(days=1), 400, "makeup_day_invalid"),
    ]:
        answer = client.post(f"{url}makeup", {"day": day.isoformat()}, format="json")
        assert (answer.status_code, answer.json()["code"]) == (status, code), day
    answer = client.post(f"{url}makeup", {"day": "yesterday"}, format="json")
    assert answer.status_code == 400 and "day" in answer.json()["fields"]
    assert snapshot() == before
    # no cards in the plan: a missed day resets the streak
    CheckinPlan.objects.filter(campaign=daily).update(makeup_cards=0)
    answer = client.post(f"{url}makeup", {"day": yesterday}, format="json")
    assert answer.status_code == 409 and answer.json()["code"] == "makeup_not_offered"
    assert snapshot() == before


@pytest.mark.django_db
def test_check_in_refusals_answer_4xx_and_change_nothing(api_as, make_campaign, daily, url, sharer):
    client = api_as(sharer)
    other = make_campaign(status="live")
    answer = client.post(f"/api/v1/checkins/{other.slug}/", {}, format="json")
    assert answer.status_code == 404 and answer.json()["code"] == "not_a_checkin_campaign"
    unplanned = make_campaign(status="live", kind=Campaign.Kind.CHECKIN)
    answer = client.post(f"/api/v1/checkins/{unplanned.slug}/", {}, format="json")
    assert answer.status_code == 404 and answer.json()["code"] == "checkin_not_configured"
    assert client.post("/api/v1/checkins/nowhere/", {}, format="json").status_code == 404
    assert client.get(f"{url}me?month=2026-13").json()["code"] == "month_invalid"
    assert api_as(None).post(url, {}, format="json").status_code in (401, 403)
    Campaign.objects.filter(pk=daily.pk).update(status=Campaign.Status.ENDED)
    answer = client.post(url, {}, format="json")
    assert answer.status_code == 409 and answer.json()["code"] == "campaign_not_live"
    assert snapshot() == ([], 0)
