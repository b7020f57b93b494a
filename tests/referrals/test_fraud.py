"""Fraud scoring: each signal on a hand-built case, bands, holds, decisions and rule sets."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django.utils import timezone

from referrals.models import (
    FraudCase,
    FraudRuleSet,
    Participant,
    Referral,
    Reward,
    RewardRule,
    ShareLink,
    ShareOpen,
)
from referrals.services import fraud, rewards

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(live_campaign, make_participant):
    """A sharer and a helper to hang invitees under them, row by row."""
    sharer = make_participant()
    Participant.objects.filter(pk=sharer.pk).update(
        first_device_id="dev-sharer", first_ip="10.1.2.3", first_user_agent="UA-sharer"
    )
    sharer.refresh_from_db()
    link = ShareLink.objects.create(code="C0DE0000C0DE0000", campaign=live_campaign, sharer=sharer)
    counter = iter(range(10_000))
    now = timezone.now()

    def invitee(*, device="", valid_at=None, opened=None, ip=None, ua="", joined_at=None, inviter=None):
        person = make_participant()
        joined_at = joined_at or now
        open_row = None
        if opened is not None:
            open_row = ShareOpen.objects.create(
                link=link,
                opener=person,
                opened_at=opened,
                ip=ip,
                user_agent=ua,
                client_event_id=f"o{next(counter)}",
            )
        return Referral.objects.create(
            campaign=live_campaign,
            invitee=person,
            inviter=inviter or sharer,
            root=sharer,
            link=link,
            open=open_row,
            depth=1,
            status="valid" if valid_at else "joined",
            valid_at=valid_at,
            joined_at=joined_at,
            joined_device_id=device,
        )

    return sharer, invitee, now


def scored(campaign, sharer) -> dict:
    found = fraud.fraud_signals(campaign_id=campaign.pk, rule_set=fraud.fraud_rule_set_active())
    return {s["code"]: s for s in found.get(sharer.pk, [])}


def test_version_1_is_active_with_the_rules_defaults():
    active = fraud.fraud_rule_set_active()
    assert (active.version, active.review_at, active.decline_at) == (1, 56, 70)
    assert active.weights["shared_device"] == 40 and active.weights["same_ip_and_ua"] == 30


def test_nothing_fires_for_an_honest_sharer(live_campaign, world):
    sharer, invitee, now = world
    for i in range(6):
        invitee(
            device=f"d{i}",
            valid_at=now - timedelta(hours=i),
            opened=now - timedelta(minutes=5),
            ip="10.9.9.9",
        )
    assert scored(live_campaign, sharer) == {}


def test_shared_device(live_campaign, world):
    sharer, invitee, _ = world
    edge = invitee(device="dev-sharer")
    signal = scored(live_campaign, sharer)["shared_device"]
    assert (signal["points"], signal["count"]) == (40, 1)
    assert signal["evidence"] == {"device": "dev-sharer", "invitees": [edge.invitee_id]}


def test_same_ip_and_user_agent_but_not_ip_alone(live_campaign, world):
    sharer, invitee, now = world
    invitee(opened=now - timedelta(minutes=1), ip="10.1.2.3", ua="UA-other")  # same office: fine
    assert "same_ip_and_ua" not in scored(live_campaign, sharer)
    edge = invitee(opened=now - timedelta(minutes=1), ip="10.1.2.3", ua="UA-sharer")
    signal = scored(live_campaign, sharer)["same_ip_and_ua"]
    assert signal["evidence"]["invitees"] == [edge.invitee_id] and signal["evidence"]["ip"] == "10.1.2.3"


def test_velocity(live_campaign, world):
    sharer, invitee, now = world
    hour = now.replace(minute=0, second=0, microsecond=0)
    for i in range(5):
        invitee(device=f"v{i}", valid_at=hour + timedelta(minutes=i))
    assert "velocity" not in scored(live_campaign, sharer)  # 5 an hour is allowed
    invitee(device="v5", valid_at=hour + timedelta(minutes=9))
    signal = scored(live_campaign, sharer)["velocity"]
    assert signal["evidence"]["most_in_an_hour"] == 6 and signal["points"] == 25


def test_faster_than_a_human(live_campaign, world):
    sharer, invitee, now = world
    invitee(opened=now - timedelta(seconds=10), joined_at=now)
    assert "fast_join" not in scored(live_campaign, sharer)
    edge = invitee(opened=now - timedelta(seconds=1), joined_at=now)
    signal = scored(live_campaign, sharer)["fast_join"]
    assert (
        signal["evidence"]["invitees"] == [edge.invitee_id]
        and float(signal["evidence"]["fastest_seconds"]) == 1.0
    )


def test_invitees_who_never_qualify(live_campaign, world, make_participant):
    sharer, invitee, now = world
    other = make_participant()
    for i in range(10):  # the campaign's other sharer: 8 of 10 qualify
        invitee(device=f"o{i}", valid_at=now if i < 8 else None, inviter=other)
    for i in range(6):  # ours: 0 of 6
        invitee(device=f"s{i}")
    signal = scored(live_campaign, sharer)["low_yield"]
    assert signal["evidence"]["yield"] == 0 and signal["evidence"]["invitees"] == 6
    assert "low_yield" not in scored(live_campaign, other)


def test_one_device_behind_many_participants(live_campaign, world, make_participant):
    sharer, invitee, _ = world
    for _ in range(3):
        invitee(device="farm-1")
    assert "device_hub" not in scored(live_campaign, sharer)  # 3 people: allowed
    p = make_participant()
    Participant.objects.filter(pk=p.pk).update(first_device_id="farm-1")
    signal = scored(live_campaign, sharer)["device_hub"]
    assert signal["evidence"]["devices"] == {"farm-1": 4} and signal["count"] == 3


def test_a_case_opens_holds_the_rewards_and_the_participant_sees_it(live_campaign, world, api_as):
    sharer, invitee, now = world
    rule = RewardRule.objects.create(campaign=live_campaign, name="r", amount=Decimal("5.00"), hold_hours=0)
    reward, _ = rewards.reward_grant(rule=rule, beneficiary_id=sharer.pk, source="a")
    rewards.reward_move(reward_id=reward.pk, to=Reward.Status.APPROVED)
    invitee(device="dev-sharer")  # +40: pass (≤ 55)
    assert fraud.fraud_score_campaign(campaign_id=live_campaign.pk)["opened"] == 0
    invitee(device="x", opened=now - timedelta(seconds=1), joined_at=now)  # +20: 60, review
    result = fraud.fraud_score_campaign(campaign_id=live_campaign.pk)
    assert result == {"opened": 1, "updated": 0, "held": 1}
    case = FraudCase.objects.get()
    assert (case.score, case.band, case.state, case.rule_set.version) == (60, "review", "open", 1)
    assert {s["code"] for s in case.signals} == {"shared_device", "fast_join"}
    reward.refresh_from_db()
    assert (reward.status, reward.hold_reason) == ("held", "fraud review")
    [item] = api_as(sharer).get("/api/v1/me/rewards/").json()["results"]
    assert item["why_held"] == "under review"  # not which signal: a fraudster learns nothing
    assert fraud.fraud_score_campaign(campaign_id=live_campaign.pk) == {"opened": 0, "updated": 0, "held": 0}
    invitee(opened=now - timedelta(minutes=1), ip="10.1.2.3", ua="UA-sharer")  # +30: 90, decline
    assert fraud.fraud_score_campaign(campaign_id=live_campaign.pk)["updated"] == 1
    case.refresh_from_db()
    assert (case.score, case.band) == (90, "decline")


def test_clear_releases_and_confirm_voids_blocks_and_frees_the_budget(live_campaign, world, make_participant):
    sharer, invitee, now = world
    rule = RewardRule.objects.create(campaign=live_campaign, name="r", amount=Decimal("5.00"), hold_hours=0)
    reviewer = User.objects.create_user("rita", is_staff=True)
    reward, _ = rewards.reward_grant(rule=rule, beneficiary_id=sharer.pk, source="a")
    invitee(device="dev-sharer")
    invitee(device="x", opened=now - timedelta(seconds=1), joined_at=now)
    fraud.fraud_score_campaign(campaign_id=live_campaign.pk)
    case = FraudCase.objects.get()
    fraud.fraud_case_decide(case_id=case.pk, decision="cleared", by=reviewer, note="a family")
    reward.refresh_from_db()
    assert reward.hold_reason == "review hold"  # finance may approve it now
    case.refresh_from_db()
    assert (case.state, case.reviewer, case.note) == ("cleared", reviewer, "a family")
    assert fraud.fraud_score_campaign(campaign_id=live_campaign.pk)["opened"] == 0  # not reopened at 60
    # a worse score opens a new case; confirming it voids and blocks
    invitee(opened=now - timedelta(minutes=1), ip="10.1.2.3", ua="UA-sharer")
    assert fraud.fraud_score_campaign(campaign_id=live_campaign.pk)["opened"] == 1
    second = FraudCase.objects.get(state="open")
    fraud.fraud_case_decide(case_id=second.pk, decision="confirmed", by=reviewer)
    reward.refresh_from_db()
    live_campaign.refresh_from_db()
    assert reward.status == "voided" and live_campaign.budget_reserved == 0
    sharer.refresh_from_db()
    assert sharer.is_blocked
    with pytest.raises(rewards.Refused) as refused:
        rewards.reward_grant(rule=rule, beneficiary_id=sharer.pk, source="b")
    assert refused.value.code == "participant_blocked"


def test_only_fraud_reviewers_decide_in_the_admin(client, live_campaign, world):
    _, invitee, now = world
    invitee(device="dev-sharer")
    invitee(device="x", opened=now - timedelta(seconds=1), joined_at=now)
    fraud.fraud_score_campaign(campaign_id=live_campaign.pk)
    case = FraudCase.objects.get()
    url = reverse("admin:referrals_fraudcase_changelist")
    finance = User.objects.create_user("fred", is_staff=True)
    finance.groups.add(Group.objects.get(name="Finance approvers"))
    client.force_login(finance)
    assert client.get(url).status_code == 403
    reviewer = User.objects.create_user("rita", is_staff=True)
    reviewer.groups.add(Group.objects.get(name="Fraud reviewers"))
    client.force_login(reviewer)
    page = client.get(url)
    assert page.status_code == 200 and "shared_device, fast_join" in page.content.decode()
    assert (
        "shared_device"
        in client.get(reverse("admin:referrals_fraudcase_change", args=[case.pk])).content.decode()
    )
    client.post(url, {"action": "clear", "_selected_action": [case.pk]})
    case.refresh_from_db()
    assert (case.state, case.reviewer) == ("cleared", reviewer)


def test_a_new_rule_set_version_scores_only_once_activated(admin_client, live_campaign, world):
    _, invitee, _ = world
    invitee(device="dev-sharer")  # 40: pass under v1
    v2 = FraudRuleSet.objects.create(
        version=2, weights={**FraudRuleSet().weights, "shared_device": 60}, note="stricter"
    )
    assert fraud.fraud_score_campaign(campaign_id=live_campaign.pk)["opened"] == 0  # v1 still active
    admin_client.post(
        reverse("admin:referrals_fraudruleset_changelist"),
        {"action": "activate", "_selected_action": [v2.pk]},
    )
    v2.refresh_from_db()
    assert v2.is_active and v2.activated_at and not FraudRuleSet.objects.get(version=1).is_active
    assert fraud.fraud_score_campaign(campaign_id=live_campaign.pk)["opened"] == 1
    assert FraudCase.objects.get().rule_set == v2


def test_grant_tasks_score_the_inviter_at_once_so_new_rewards_are_held(live_campaign, world):
    from referrals.tasks import rewards_for_referrals_task

    sharer, invitee, now = world
    RewardRule.objects.create(campaign=live_campaign, name="r", amount=Decimal("5.00"), hold_hours=0)
    edges = [
        invitee(device="dev-sharer", valid_at=now),
        invitee(device="x", opened=now - timedelta(seconds=1), joined_at=now, valid_at=now),
    ]
    assert rewards_for_referrals_task([e.pk for e in edges], "invitee_valid") == 2
    case = FraudCase.objects.get(participant=sharer)
    assert case.band == "review"
    assert set(Reward.objects.filter(beneficiary=sharer).values_list("hold_reason", flat=True)) == {
        "fraud review"
    }


def test_bulk_clear_by_score_and_signal_in_the_admin(admin_client, live_campaign, make_participant):
    rule_set = fraud.fraud_rule_set_active()
    cases = [
        FraudCase.objects.create(
            campaign=live_campaign,
            participant=make_participant(),
            rule_set=rule_set,
            score=score,
            band=rule_set.band(score),
            signals=[{"code": code, "points": score}],
            deadline=timezone.now(),
        )
        for score, code in [(58, "fast_join"), (60, "low_yield"), (75, "shared_device")]
    ]
    url = reverse("admin:referrals_fraudcase_changelist")
    shown = admin_client.get(url, {"score_range": "-60"}).context["cl"].result_list
    assert sorted(c.score for c in shown) == [58, 60]
    assert [
        c.score for c in admin_client.get(url, {"signal": "shared_device"}).context["cl"].result_list
    ] == [75]
    admin_client.post(
        f"{url}?score_range=-60", {"action": "clear", "select_across": "1", "_selected_action": [cases[0].pk]}
    )
    assert sorted(FraudCase.objects.values_list("score", "state")) == [
        (58, "cleared"),
        (60, "cleared"),
        (75, "open"),
    ]


def test_a_risky_wechat_rank_adds_its_points_and_an_unreadable_one_holds(
    live_campaign, world, fake_wechat, settings
):
    from django.core.cache import cache

    cache.clear()
    settings.FISSION_RISK_RANK_ENABLED = True
    sharer, invitee, _ = world
    rule = RewardRule.objects.create(campaign=live_campaign, name="r", amount=Decimal("5.00"), hold_hours=0)
    reward, _ = rewards.reward_grant(rule=rule, beneficiary_id=sharer.pk, source="a")
    invitee(device="dev-sharer")  # 40 points
    # WeChat cannot answer: fail closed, the reward is held, no case yet
    fake_wechat.fail_next("http500", endpoint="riskrank")
    fraud.fraud_score_campaign(campaign_id=live_campaign.pk)
    reward.refresh_from_db()
    assert reward.hold_reason == "fraud review: risk check pending"
    with pytest.raises(Exception) as refused:
        rewards.reward_move(reward_id=reward.pk, to=Reward.Status.APPROVED)
    assert getattr(refused.value, "code", "") == "reward_under_review"
    assert not FraudCase.objects.exists()
    # next pass WeChat answers rank 3: +40 → 80, decline; the pending hold becomes the case's
    fake_wechat.set_risk_rank(sharer.openid, 3)
    fraud.fraud_score_campaign(campaign_id=live_campaign.pk)
    case = FraudCase.objects.get()
    assert (case.score, case.band) == (80, "decline")
    assert {s["code"] for s in case.signals} == {"shared_device", "risk_rank"}
    reward.refresh_from_db()
    assert reward.hold_reason == "fraud review"
    sharer.refresh_from_db()
    assert (sharer.risk_rank, sharer.risk_checked_at is not None) == (3, True)


def test_a_low_risk_rank_lifts_the_pending_hold(live_campaign, world, fake_wechat, settings):
    from django.core.cache import cache

    cache.clear()
    settings.FISSION_RISK_RANK_ENABLED = True
    sharer, _, _ = world
    rule = RewardRule.objects.create(campaign=live_campaign, name="r", amount=Decimal("5.00"), hold_hours=0)
    Referral.objects.create(
        campaign=live_campaign,
        invitee=Participant.objects.create(app_id="wx", openid="o-x"),
        inviter=sharer,
        root=sharer,
        joined_at=timezone.now(),
        depth=1,
    )
    reward, _ = rewards.reward_grant(rule=rule, beneficiary_id=sharer.pk, source="a")
    fake_wechat.fail_next("timeout", endpoint="riskrank", seconds=3)
    settings.WECHAT_TIMEOUT_SECONDS = 0.5
    fraud.fraud_score_campaign(campaign_id=live_campaign.pk)
    reward.refresh_from_db()
    assert reward.hold_reason == "fraud review: risk check pending"
    fraud.fraud_score_campaign(campaign_id=live_campaign.pk)  # rank 0 now
    reward.refresh_from_db()
    assert reward.hold_reason == "review hold" and not FraudCase.objects.exists()


def test_confirming_a_fraudster_opens_cases_for_their_ring(live_campaign, world, make_participant):
    sharer, invitee, now = world
    rule = RewardRule.objects.create(campaign=live_campaign, name="r", amount=Decimal("5.00"), hold_hours=0)
    # an accomplice on the sharer's phone, sharing in the same campaign and holding a reward
    accomplice = make_participant()
    Participant.objects.filter(pk=accomplice.pk).update(first_device_id="dev-sharer")
    invitee(device="y", inviter=accomplice)
    accomplice_reward, _ = rewards.reward_grant(rule=rule, beneficiary_id=accomplice.pk, source="b")
    stranger = make_participant()  # no shared identifier: untouched
    invitee(device="z", inviter=stranger)
    invitee(device="dev-sharer")
    invitee(device="x", opened=now - timedelta(seconds=1), joined_at=now)
    fraud.fraud_score_campaign(campaign_id=live_campaign.pk)
    case = FraudCase.objects.get(participant=sharer)
    fraud.fraud_case_decide(case_id=case.pk, decision="confirmed", by=User.objects.create_user("rita"))
    ring_case = FraudCase.objects.get(participant=accomplice)
    assert (ring_case.band, ring_case.state, ring_case.signals[0]["code"]) == (
        "decline",
        "open",
        "ring_of_confirmed",
    )
    assert ring_case.signals[0]["evidence"]["confirmed"] == sharer.pk
    accomplice_reward.refresh_from_db()
    assert accomplice_reward.hold_reason == "fraud review"
    assert not FraudCase.objects.filter(participant=stranger).exists()


def test_a_back_test_shows_what_a_version_would_change_and_changes_nothing(
    admin_client, live_campaign, world
):
    from django.contrib.messages import get_messages

    sharer, invitee, _ = world
    rule = RewardRule.objects.create(campaign=live_campaign, name="r", amount=Decimal("5.00"), hold_hours=0)
    rewards.reward_grant(rule=rule, beneficiary_id=sharer.pk, source="a")
    invitee(device="dev-sharer")  # 40 under v1: pass
    stricter = FraudRuleSet.objects.create(version=2, weights={**FraudRuleSet().weights, "shared_device": 60})
    result = fraud.fraud_backtest(rule_set=stricter, days=7)
    assert (result["would_open"], result["would_close"], result["held_money"]) == (1, 0, Decimal("5.00"))
    response = admin_client.post(
        reverse("admin:referrals_fraudruleset_changelist"),
        {"action": "backtest", "_selected_action": [stricter.pk]},
        follow=True,
    )
    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("1 case(s) would open" in m and "¥5.00 more held" in m for m in said), said
    assert not FraudCase.objects.exists() and not FraudRuleSet.objects.get(version=2).is_active
    assert Reward.objects.get(beneficiary=sharer).hold_reason == "review hold"  # nothing held


def test_the_case_page_shows_invitees_rewards_and_ring_and_the_weekly_summary_exports(
    admin_client, live_campaign, world
):
    sharer, invitee, now = world
    rule = RewardRule.objects.create(campaign=live_campaign, name="r", amount=Decimal("5.00"), hold_hours=0)
    rewards.reward_grant(rule=rule, beneficiary_id=sharer.pk, source="referral:1:invitee_valid")
    first = invitee(device="dev-sharer", valid_at=now)
    invitee(device="x", opened=now - timedelta(seconds=1), joined_at=now)
    fraud.fraud_score_campaign(campaign_id=live_campaign.pk)
    case = FraudCase.objects.get()
    page = admin_client.get(reverse("admin:referrals_fraudcase_change", args=[case.pk])).content.decode()
    assert "2 invitee(s) shown, 1 valid (yield 50%)" in page
    assert "referral:1:invitee_valid" in page  # their reward
    assert f"{sharer.pk}, {first.invitee_id}" in page  # the ring: the invitee joined on the sharer's phone
    response = admin_client.post(
        reverse("admin:referrals_fraudcase_changelist"),
        {"action": "weekly_summary", "_selected_action": [case.pk]},
    )
    body = response.content.decode("utf-8")
    assert response["Content-Type"].startswith("text/csv")
    assert body.startswith("\ufeffcampaign,band,state,signal,cases")
    assert f"{live_campaign.slug},review,open,shared_device,1" in body


def test_the_queue_stays_fast_with_many_open_cases(
    admin_client, live_campaign, django_assert_max_num_queries
):
    import time

    from django.db import connection

    rule_set = fraud.fraud_rule_set_active()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO referrals_participant (app_id, openid, unionid, nickname, avatar, profile_version,"
            " session_key, first_seen_at, first_device_id, first_user_agent, token_version, is_blocked)"
            " SELECT 'wx', 'bulk-' || i, '', '', '', 1, '', now(), '', '', 1, false"
            " FROM generate_series(1, 100000) i"
        )
        cursor.execute(
            "INSERT INTO referrals_fraudcase (campaign_id, participant_id, rule_set_id, score, band, signals,"
            " state, deadline, note, note_to_participant, created_at, updated_at)"
            " SELECT %s, p.id, %s, 56 + p.id %% 40,"
            " CASE WHEN 56 + p.id %% 40 >= 70 THEN 'decline' ELSE 'review' END, %s::jsonb, 'open',"
            " now() + (p.id %% 97) * interval '1 hour', '', '', now(), now()"
            " FROM referrals_participant p WHERE p.openid LIKE 'bulk-%%'",
            [live_campaign.pk, rule_set.pk, '[{"code": "fast_join", "points": 20}]'],
        )
    url = reverse("admin:referrals_fraudcase_changelist")
    admin_client.get(url)  # warm up
    for params in ({}, {"state__exact": "open", "band__exact": "decline"}, {"score_range": "90-"}):
        started = time.perf_counter()
        with django_assert_max_num_queries(12):
            response = admin_client.get(url, params)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200 and len(response.context["cl"].result_list) == 100
        assert elapsed < 1.5, f"{params}: {elapsed:.2f} s"


def test_a_ring_with_a_high_mean_score_or_a_confirmed_member_gets_cases(
    live_campaign, world, make_participant
):
    sharer, invitee, _ = world
    rule_set = fraud.fraud_rule_set_active()
    rule = RewardRule.objects.create(campaign=live_campaign, name="r", amount=Decimal("5.00"), hold_hours=0)
    a, b, c = make_participant(), make_participant(), make_participant()
    for member in (a, b, c):  # one phone behind three sharers
        Participant.objects.filter(pk=member.pk).update(first_device_id="ring-phone")
        invitee(device=f"i-{member.pk}", inviter=member)
    reward, _ = rewards.reward_grant(rule=rule, beneficiary_id=c.pk, source="c")

    def case_for(member, score):
        return FraudCase.objects.create(
            campaign=live_campaign,
            participant=member,
            rule_set=rule_set,
            score=score,
            band=rule_set.band(score),
            signals=[],
            deadline=timezone.now(),
        )

    case_for(a, 80)
    case_for(b, 70)
    assert fraud.fraud_rings_pass() == 0  # mean (80 + 70 + 0) / 3 = 50: below review
    FraudCase.objects.filter(participant=b).update(score=90)
    assert fraud.fraud_rings_pass() == 1  # mean 56.7: c gets a case
    ring_case = FraudCase.objects.get(participant=c)
    assert ring_case.signals[0]["code"] == "ring" and ring_case.signals[0]["evidence"]["mean_score"] == 56.7
    reward.refresh_from_db()
    assert reward.hold_reason == "fraud review"
    assert fraud.fraud_rings_pass() == 0  # idempotent
    # a confirmed member puts the whole ring in decline
    FraudCase.objects.filter(participant=c).delete()
    FraudCase.objects.all().delete()
    Participant.objects.filter(pk=a.pk).update(is_blocked=True)
    assert fraud.fraud_rings_pass() == 2
    assert set(FraudCase.objects.values_list("participant_id", "band")) == {
        (b.pk, "decline"),
        (c.pk, "decline"),
    }
    assert not FraudCase.objects.filter(participant=sharer).exists()
