"""The generative model on its own (no database): determinism, prefix stability, the shape
of the cascade and of the day."""

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

from simulator import model
from simulator.actions import member_actions, open_actions

CHANNELS = (("moments", "moments"), ("groups", "wechat_group"), ("kol", "kol"))
START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC).timestamp()


def campaign(**overrides) -> model.Campaign:
    fields = {
        "id": 7,
        "slug": "sim",
        "starts_at": None,
        "ends_at": None,
        "time_zone": "Asia/Shanghai",
        "valid_event_name": "resume_completed",
        "valid_property": "completeness",
        "valid_comparison": "gte",
        "valid_threshold": Decimal("0.6"),
        "valid_within_hours": 168,
        "attribution_window_hours": 72,
        "channels": CHANNELS,
    }
    return model.Campaign(**(fields | overrides))


def plan_of(days=3.0, c=None, **params) -> tuple[model.Model, model.Plan]:
    sim = model.Model(
        model.Params(**({"participants": 2000, "days": days, "seed": 11} | params)),
        c or campaign(),
        start=START,
        end=START + days * 86400,
    )
    sim.calibrate()
    return sim, sim.plan()


def shape(sim, plan) -> list:
    rows = []
    for m in plan.members:
        rows.append((m.key, round(m.t_join, 6), m.parent, m.channel, m.depth, m.ring))
        rows.extend(member_actions(sim, plan, m))
    rows.extend(tuple(a) for o in plan.opens for a in open_actions(sim, plan, o))
    return rows


def test_the_same_seed_plans_the_same_campaign_and_another_seed_another():
    # given / when
    first, again, other = plan_of(), plan_of(), plan_of(seed=12)

    # then
    assert shape(*first) == shape(*again)
    assert len(first[1].members) > 1000
    assert shape(*first) != shape(*other)


def test_a_longer_horizon_keeps_what_happened_before_it():
    # given: no participant cap (the cap cuts at the N-th join, wherever the horizon is)
    sim, _ = plan_of(days=2.0, participants=1500)
    short = sim.plan(cap=10**6)
    longer = model.Model(sim.p, sim.c, start=START, end=START + 3 * 86400)
    longer.seed_scale = sim.seed_scale  # the same arrival rate, one more day

    # when
    long = longer.plan(cap=10**6)

    # then: the first two days are the same people at the same times, invited by the same
    cut = START + 2 * 86400
    before = [(m.key, m.t_join, m.parent) for m in long.members if m.t_join < cut]
    assert before == [(m.key, m.t_join, m.parent) for m in short.members]
    assert len(long.members) > len(short.members)


def test_sharers_bring_about_branching_invitees():
    # given: a campaign long enough that early sharers' invitees have all arrived
    sim, plan = plan_of(days=8.0, participants=6000, branching=2.5, share_rate=0.3)
    children = Counter(m.parent for m in plan.members if m.parent >= 0)
    early = [m for m in plan.members if m.t_join < START + 4 * 86400 and m.ring < 0]

    # when
    sharers = [m for m in early if sim.shares_and_opens(m)[0]]
    mean = sum(children[m.n] for m in sharers) / len(sharers)

    # then
    assert len(sharers) > 500
    assert 2.5 * 0.85 < mean < 2.5 * 1.15
    assert 0.25 < len(sharers) / len(early) < 0.35


def test_the_day_peaks_in_the_evening_of_the_campaigns_time_zone():
    for zone, offset in (("Asia/Shanghai", 8), ("America/New_York", -5)):
        # given
        _, plan = plan_of(c=campaign(time_zone=zone), participants=4000)

        # when
        joins = Counter(int((m.t_join // 3600 + offset) % 24) for m in plan.members)

        # then: the busiest three local hours in a row are the evening, the quietest the small hours
        def window(h, joins=joins):
            return sum(joins[(h + i) % 24] for i in range(3))

        busiest, quietest = max(range(24), key=window), min(range(24), key=window)
        assert busiest in (18, 19, 20, 21), (zone, sorted(joins.items()))
        assert quietest in (1, 2, 3, 4), (zone, sorted(joins.items()))
        assert window(busiest) > 5 * window(quietest)


def test_planted_rings_share_a_phone_and_their_leaders_network_and_join_fast():
    # given
    sim, plan = plan_of(participants=800, fraud_rings=3, ring_size=5)

    # then
    assert len(plan.rings) == 3
    for members in plan.rings.values():
        leader, *accounts = (plan.members[n] for n in members)
        assert len(accounts) == 5
        leader_login = member_actions(sim, plan, leader)[0]
        logins = [member_actions(sim, plan, a)[0] for a in accounts]
        assert len({login[3] for login in logins}) == 1  # one device for the whole ring
        assert {(login[4], login[5]) for login in logins} == {(leader_login[4], leader_login[5])}  # IP + UA
        for account in accounts:
            assert account.parent == leader.n
            assert account.t_join - account.t_open < 3  # faster than a person
            assert member_actions(sim, plan, account)[3:] == []  # joins, then nothing
