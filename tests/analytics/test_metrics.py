"""Every metric on small campaigns whose numbers are worked out by hand (METRICS.md)."""

import random
import zoneinfo
from collections import defaultdict, deque
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.utils import timezone

from analytics import selectors
from campaigns.models import Channel
from referrals.models import FraudCase, FraudRuleSet, Reward, RewardRule

from .conftest import snapshot

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def cell(matrix: dict, day, n: int) -> dict:
    cohort = next(c for c in matrix["cohorts"] if c["day"] == day.isoformat())
    return cohort["cells"][n - 1]


def test_retention_cohorts_and_days_follow_the_campaign_time_zone(story, fold):
    # given: D is a Shanghai day three days ago; M is the local midnight after it
    s = story(time_zone="Asia/Shanghai")
    day = (timezone.now().astimezone(SHANGHAI) - timedelta(days=3)).date()
    midnight = datetime.combine(day + timedelta(days=1), time(), tzinfo=SHANGHAI)
    p1, p2, p3 = s.person(), s.person(), s.person()
    s.join(p1, at=midnight - timedelta(minutes=1))  # 23:59 on D (15:59 UTC)
    s.event(p1, "visit", at=midnight + timedelta(minutes=1))  # 00:01 on D+1: calendar day 1, rolling day 0
    s.join(p2, at=midnight + timedelta(minutes=1))  # 00:01 on D+1: the next cohort
    s.event(p2, "visit", at=midnight + timedelta(days=1, minutes=2))  # calendar 1, rolling 1
    s.join(p3, at=midnight - timedelta(hours=2))  # 22:00 on D
    s.event(p3, "visit", at=midnight + timedelta(days=1, minutes=30))  # calendar 2, rolling 1
    # when
    fold(s.campaign)
    calendar = selectors.retention(s.campaign, days=5)
    rolling = selectors.retention(s.campaign, basis="rolling", days=5)
    on_or_after = selectors.retention(s.campaign, kind="on_or_after", days=5)
    cumulative = selectors.retention(s.campaign, kind="cumulative", days=5)
    # then
    d, d1 = day, day + timedelta(days=1)
    assert [(c["day"], c["size"]) for c in calendar["cohorts"]] == [(d.isoformat(), 2), (d1.isoformat(), 1)]
    assert [cell(calendar, d, n)["count"] for n in (1, 2, 3)] == [1, 1, 0]
    assert cell(calendar, d, 1)["rate"] == 0.5
    assert [cell(calendar, d1, n)["count"] for n in (1, 2)] == [1, 0]
    assert [cell(rolling, d, n)["count"] for n in (1, 2)] == [1, 0]  # p1's visit is rolling day 0
    assert [cell(rolling, d1, n)["count"] for n in (1, 2)] == [1, 0]
    assert [cell(on_or_after, d, n)["count"] for n in (1, 2, 3)] == [2, 1, 0]
    assert [cell(cumulative, d, n)["count"] for n in (1, 2, 3)] == [1, 2, 2]
    # day D+3 is today: not over yet
    assert not cell(calendar, d, 2)["incomplete"] and cell(calendar, d, 3)["incomplete"]
    assert calendar["average"][0] == {"n": 1, "rate": 2 / 3, "cohorts": 2}


def test_funnel_counts_conversions_and_times_between_steps(story, fold):
    # given: A shares twice; B opens and joins 10 min later and qualifies 30 min after joining;
    # C opens and leaves; D opens, joins 20 min later and never qualifies
    s = story(valid_event_name="resume_completed")
    t0 = timezone.now() - timedelta(days=1)
    a, b, c, d = (s.person() for _ in range(4))
    s.join(a, at=t0)
    s.share(a, at=t0 + timedelta(minutes=1), times=2)
    s.join(b, at=t0 + timedelta(hours=1, minutes=10), via=a, opened_at=t0 + timedelta(hours=1))
    s.qualify(b, at=t0 + timedelta(hours=1, minutes=40))
    s.open(s.link(a), c, at=t0 + timedelta(hours=2))
    s.join(d, at=t0 + timedelta(hours=3, minutes=20), via=a, opened_at=t0 + timedelta(hours=3))
    # when
    fold(s.campaign)
    result = selectors.funnel(s.campaign)
    # then
    steps = {step["step"]: step for step in result["steps"]}
    assert [steps[k]["count"] for k in ("share", "open", "join", "valid", "retained_d7")] == [1, 3, 2, 1, 0]
    assert steps["open"]["step_conversion"] == 3.0 and steps["open"]["unit"] == "openers per sharer"
    assert steps["join"]["step_conversion"] == 2 / 3
    assert steps["valid"]["step_conversion"] == 0.5 and steps["valid"]["drop_off"] == 0.5
    assert steps["valid"]["overall_conversion"] == 1.0
    assert (steps["open"]["median_minutes"], steps["open"]["p90_minutes"]) == (59.0, 59.0)  # A: 0:01 → 1:00
    assert (steps["join"]["median_minutes"], steps["join"]["p90_minutes"]) == (10.0, 20.0)
    assert steps["valid"]["median_minutes"] == 30.0
    assert steps["retained_d7"]["estimate_label"] == "forecast"  # day 7 has not come for this cohort
    assert result["last_effective_users"] == 0
    assert [r["participant_id"] for r in selectors.funnel_dropoffs(s.campaign, step="join")] == [c.pk]
    assert [r["participant_id"] for r in selectors.funnel_dropoffs(s.campaign, step="valid")] == [d.pk]
    assert list(selectors.funnel_dropoffs(s.campaign, step="open")) == []
    # the sharer's row: 2 shares, 3 opens of the link, 1 valid invitee
    board = selectors.sharers(s.campaign)["leaderboard"]
    assert [(r["participant_id"], r["shares"], r["opens"], r["direct_valid"]) for r in board] == [
        (a.pk, 2, 3, 1)
    ]


def test_ltv_counts_each_order_once_within_h_days_net_of_refunds(story, fold, rebuild):
    # given: B joins through A's link (valid at once) 35 days ago and pays, in the first batch:
    # o1 ¥59 (the backend sends it twice), o2 ¥20, o3 ¥100, and o5 ¥500 on day 31 (after H = 30)
    now = timezone.now()
    s = story(starts_at=now - timedelta(days=36), ends_at=now + timedelta(days=1))
    t0 = now - timedelta(days=35)
    a, b = s.person(), s.person()
    s.join(a, at=t0 - timedelta(minutes=30))
    s.join(b, at=t0, via=a)
    paid = {"o1": "59.00", "o2": "20.00", "o3": "100.00"}
    for i, (order, amount) in enumerate(paid.items()):
        s.event(
            b,
            "order_paid",
            at=t0 + timedelta(days=1, minutes=i),
            properties={"order_id": order, "amount": amount},
        )
    s.event(
        b, "order_paid", at=t0 + timedelta(days=1, hours=1), properties={"order_id": "o1", "amount": "59.00"}
    )
    s.event(b, "order_paid", at=t0 + timedelta(days=31), properties={"order_id": "o5", "amount": "500.00"})
    fold(s.campaign)

    def ltv():
        return selectors.channels(s.campaign)["total"]["ltv"]

    assert ltv() == Decimal("179.00")  # 59 once + 20 + 100; o5 is past H
    # when: o3 is refunded, and o4 is refunded before its order_paid reaches us
    s.event(b, "order_refunded", at=t0 + timedelta(days=3), properties={"order_id": "o3"})
    s.event(b, "order_refunded", at=t0 + timedelta(days=4), properties={"order_id": "o4"})
    fold(s.campaign)
    assert ltv() == Decimal("79.00")
    s.event(b, "order_paid", at=t0 + timedelta(days=2), properties={"order_id": "o4", "amount": "30.00"})
    s.event(b, "order_refunded", at=t0 + timedelta(days=5), properties={"order_id": "o3"})  # again
    fold(s.campaign)
    # then: the refunded orders count nothing; the rebuild from the log says the same
    assert ltv() == Decimal("79.00")
    incremental = snapshot(s.campaign.pk)
    assert [(o[1], o[6], o[7]) for o in incremental["analytics_order"]] == [
        ("o1", False, Decimal("59.00")),
        ("o2", False, Decimal("20.00")),
        ("o3", True, Decimal("0.00")),
        ("o4", True, Decimal("0.00")),
        ("o5", False, Decimal("0.00")),
    ]
    rebuild(s.campaign)
    assert snapshot(s.campaign.pk) == incremental


def test_goal_pacing_against_the_target_line(story, fold):
    # given: a 20-hour campaign half over, goal 4, one valid user 5 hours ago and one 5 minutes ago
    now = timezone.now()
    s = story(starts_at=now - timedelta(hours=10), ends_at=now + timedelta(hours=10), goal_target=4)
    p1, p2 = s.person(), s.person()
    s.join(p1, at=now - timedelta(hours=5))
    s.join(p2, at=now - timedelta(minutes=5))
    # when
    fold(s.campaign)
    pacing = selectors.goal_pacing(s.campaign, now=now)
    # then
    assert (pacing["count"], pacing["completion"], pacing["elapsed"]) == (2, 0.5, 0.5)
    assert pacing["pace_index"] == 1.0 and pacing["hours_ahead"] == 0.0
    assert pacing["current_rate_per_min"] == 1 / 15
    assert abs(pacing["required_rate_per_min"] - 2 / 600) < 1e-9
    assert pacing["projected_total"] == 2 + 40  # 1/15 a minute for 600 minutes
    assert not pacing["alert"]
    finish = datetime.fromisoformat(pacing["projected_finish"])
    assert abs((finish - (now + timedelta(minutes=30))).total_seconds()) < 1
    assert pacing["series"][-1]["count"] == 2 and pacing["series"][-1]["target"] == 2.0
    # twenty quiet minutes later the 15-minute rate is 0: below the required pace
    later = selectors.goal_pacing(s.campaign, now=now + timedelta(minutes=20))
    assert later["alert"] and "needs" in later["alert_text"]
    minute = selectors.last_hour(s.campaign, now=now)
    assert sum(minute["by_event"]["join"]) == 1 and sum(minute["valid"]) == 1
    assert selectors.progress([s.campaign.pk]) == {s.campaign.pk: 0.5}


def _random_recursive_tree(n: int, seed: int) -> list[int | None]:
    rng = random.Random(seed)
    return [None] + [rng.randrange(i) for i in range(1, n)]


def _mean_distance(parent: list[int | None]) -> float:
    n = len(parent)
    adj = defaultdict(list)
    for child, p in enumerate(parent):
        if p is not None:
            adj[child].append(p)
            adj[p].append(child)
    total = 0
    for source in range(n):
        seen, queue = {source: 0}, deque([source])
        while queue:
            u = queue.popleft()
            for v in adj[u]:
                if v not in seen:
                    seen[v] = seen[u] + 1
                    queue.append(v)
        total += sum(seen.values())
    return total / (n * (n - 1))


def test_k_factor_generations_and_structural_virality_of_a_random_recursive_tree(story, fold):
    # given: 40 participants, each joining through a uniformly chosen earlier one, all valid on one day
    parent = _random_recursive_tree(40, seed=7)
    s = story(time_zone="UTC")
    t0 = datetime.combine(timezone.now().date() - timedelta(days=2), time(1), tzinfo=zoneinfo.ZoneInfo("UTC"))
    people = [s.person() for _ in parent]
    for i, p in enumerate(parent):
        s.join(people[i], at=t0 + timedelta(minutes=2 * i), via=people[p] if p is not None else None)
    depth = [0] * len(parent)
    for i, p in enumerate(parent):
        if p is not None:
            depth[i] = depth[p] + 1
    generations = defaultdict(int)
    for d in depth:
        generations[d] += 1
    # when
    fold(s.campaign)
    v = selectors.virality(s.campaign)
    # then
    assert v["k_factor"] == 39 / 40 and abs(v["amplification"] - 40) < 1e-9
    (cohort,) = v["by_cohort_day"]
    assert (cohort["members"], cohort["valid_invitees"], cohort["k"]) == (40, 39, 39 / 40)
    assert [(g["generation"], g["valid"]) for g in v["by_generation"]] == sorted(generations.items())
    for g in v["by_generation"]:
        nxt = generations.get(g["generation"] + 1, 0)
        assert g["k"] == nxt / generations[g["generation"]]
    assert v["breadth"] == max(generations.values())
    parents = {p for p in parent if p is not None}
    assert v["branching_factor"] == 39 / len(parents)
    (cascade,) = v["cascades"]
    assert (cascade["root_id"], cascade["size"], cascade["depth"]) == (people[0].pk, 40, max(depth))
    assert abs(cascade["structural_virality"] - _mean_distance(parent)) < 1e-9
    cycles = sorted(2 * (i - p) for i, p in enumerate(parent) if p is not None)  # minutes
    assert v["cycle_time"]["median_hours"] == round(cycles[(len(cycles) + 1) // 2 - 1] / 60, 3)
    assert v["viral_share"] == 39 / 40
    top = selectors.sharers(s.campaign)["segments"]["super_spreaders"]
    assert top["participant_ids"] == [people[0].pk]  # the root: everyone is downstream of it


def test_channels_cac_after_fraud_voids_and_money(story, fold):
    # given: moments (¥100 spend) brings B and C; kol brings D and Y; Y's inviter X is a confirmed fraudster
    s = story()
    moments = Channel.objects.create(
        campaign=s.campaign, code="moments", name="Moments", spend=Decimal("100")
    )
    Channel.objects.create(campaign=s.campaign, code="kol", name="KOL")
    t0 = timezone.now() - timedelta(days=2)
    a, b, c, d, x, y = (s.person() for _ in range(6))
    s.join(a, at=t0)
    s.join(x, at=t0)
    s.share(x, at=t0 + timedelta(minutes=1))
    via_moments = s.link(a, "moments")
    refs = {}
    for who, minutes in ((b, 10), (c, 20)):
        s.open(via_moments, who, at=t0 + timedelta(minutes=minutes - 1))
        refs[who] = s.join(who, at=t0 + timedelta(minutes=minutes), link=via_moments)
    for who, sharer in ((d, a), (y, x)):
        link = s.link(sharer, "kol")
        s.open(link, who, at=t0 + timedelta(minutes=29))
        refs[who] = s.join(who, at=t0 + timedelta(minutes=30), link=link)
    rule = RewardRule.objects.create(campaign=s.campaign, name="¥5 a friend", amount=Decimal("5.00"))

    def reward(ref, status, amount="5.00", source=None):
        return Reward.objects.create(
            rule=rule,
            campaign=s.campaign,
            beneficiary_id=ref.inviter_id,
            kind="cash",
            source=source or f"referral:{ref.pk}:invitee_valid",
            amount=Decimal(amount),
            status=status,
        )

    reward(refs[b], "paid")
    paid_c = reward(refs[c], "paid")
    reward(refs[c], "clawed_back", "-5.00", source=f"clawback:{paid_c.pk}")
    reward(refs[d], "held")
    rule_set = FraudRuleSet.objects.get_or_create(version=1, defaults={"is_active": True})[0]
    FraudCase.objects.create(
        campaign=s.campaign,
        participant=x,
        rule_set=rule_set,
        score=80,
        band="decline",
        state="confirmed",
        deadline=timezone.now(),
    )
    # when
    fold(s.campaign)
    result = selectors.channels(s.campaign)
    money = selectors.reviews_and_money(s.campaign)
    # then
    by_code = {r["code"]: r for r in result["channels"]}
    m, k, none = by_code["moments"], by_code["kol"], by_code[""]
    assert (m["joins"], m["valid"], m["reward_cost"], m["spend"], m["cost"]) == (
        2,
        2,
        Decimal("5.00"),
        Decimal("100.00"),
        Decimal("105.00"),
    )
    assert m["cac"] == Decimal("52.50") and m["channel_id"] == moments.pk
    assert (k["joins"], k["valid"], k["cost"], k["cac"]) == (
        2,
        1,
        Decimal("0.00"),
        Decimal("0.00"),
    )  # Y voided
    assert (none["joins"], none["valid"]) == (2, 1)  # X voided
    assert result["total"]["valid"] == 4 and result["total"]["cac"] == Decimal("26.25")
    assert m["new_users_per_sharer"] is None  # nobody who came through moments shares
    # X (no channel) is the one who shares; the no-channel participants invited B, C and D
    assert (none["sharers"], none["invited_valid"], none["new_users_per_sharer"]) == (1, 3, 3.0)
    assert result["total"]["referred_valid"] == 3
    assert money["rewards"]["paid"] == Decimal("10.00") and money["rewards"]["clawed_back"] == Decimal(
        "-5.00"
    )
    assert money["rewards"]["held"] == Decimal("5.00") and money["rewards"]["counts"]["paid"] == 2
    assert money["budget"]["left"] == Decimal("1000.00")
    assert selectors.funnel(s.campaign)["steps"][3]["count"] == 3  # B, C, D opened, joined and are valid
    board = {r["participant_id"]: r for r in selectors.sharers(s.campaign)["leaderboard"]}
    assert board[x.pk]["fraud_outcome"] == "confirmed" and board[x.pk]["direct_valid"] == 0  # Y is voided
    assert board[a.pk]["fraud_outcome"] == "none" and board[a.pk]["direct_valid"] == 3
    assert board[a.pk]["reward_cost"] == Decimal("10.00")  # 5 + 5 − 5 clawed back + 5 held
