"""The generative model of a viral campaign: who arrives when, who shares where, who opens,
joins, qualifies, orders and comes back. Pure Python, no database.

Deterministic and *prefix-stable*: every participant draws from a random stream seeded by
their own key (derived from their inviter's key and their place among the inviter's
invitees, or from the seed and the arrival day for a seed participant), so extending the
horizon never changes what happened before it. Participants are numbered in the order
they join, which is the order the plan is built in (a heap of pending joins).

Two streams per participant:
- *structure* (`shares_and_opens`): whether they share, their shares (time, channel), the
  opens of their links and which opens join;
- *detail* (`detail`): device, IP, user agent, the events of their first day, qualifying
  (valid) and progress events, orders, refunds and the days they come back.
The plan keeps only the structure of joined participants; the writers (services or
COPY) re-derive everything else from the keys, so a million participants fit in memory.
"""

import hashlib
import heapq
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

# Relative traffic by local hour (0–23) of a Chinese consumer mini program: quiet from 1 to
# 6 am, a lunch bump, the evening peak at 9 pm.
DIURNAL = (
    0.45, 0.28, 0.18, 0.12, 0.10, 0.12, 0.25, 0.55, 0.85, 0.95, 1.00, 1.10,
    1.30, 1.10, 0.95, 0.95, 1.00, 1.05, 1.20, 1.45, 1.70, 1.85, 1.55, 0.95,
)  # fmt: skip
DIURNAL_MAX = max(DIURNAL)
DIURNAL_MEAN = sum(DIURNAL) / 24

# Opens per share relative to the mean, by channel kind: a KOL post or an official-account
# article reaches more people than a 1:1 chat. Normalised over the mix, so `branching` holds.
CHANNEL_REACH = {
    "kol": 4.0,
    "official_account": 3.0,
    "offline_poster": 2.0,
    "wechat_group": 1.5,
    "moments": 1.0,
    "chat": 0.5,
    "other": 1.0,
}

USER_AGENTS = tuple(
    f"Mozilla/5.0 ({os}) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile MicroMessenger/8.0.{v}"
    for os in (
        "iPhone; CPU iPhone OS 17_4 like Mac OS X",
        "iPhone; CPU iPhone OS 16_6 like Mac OS X",
        "Linux; Android 14; V2309A",
        "Linux; Android 13; M2012K11AC",
        "Linux; Android 12; HarmonyOS; NOH-AN00",
    )
    for v in (44, 47, 49, 50)
)
PRICES = tuple(Decimal(p) for p in ("9.90", "19.90", "29.00", "59.00", "99.00", "199.00"))

SEED_SHARE = 0.05  # seeds as a share of participants when share_rate × branching ≥ 1
# kinds of pending joins: ordinary people (seeds and invitees), ring leaders, ring accounts
SEED, LEADER, RING = 0, 1, 2


@dataclass(frozen=True)
class Params:
    participants: int = 3000
    days: float = 3.0
    seed: int = 1
    channels: tuple[tuple[str, float], ...] = ()  # (code, weight); empty: the campaign's, equally
    branching: float = 2.0  # mean invitees (joins) per sharer
    share_rate: float = 0.4  # joined participants who share at least once
    shares_per_sharer: float = 2.0  # mean shares of a sharer
    join_rate: float = 0.4  # opens of a link that join
    qualify_rate: float = 0.6  # joined participants who become valid
    retention: float = 0.35  # chance of coming back on day 1; day n: retention / sqrt(n)
    events_per_day: float = 3.0  # mean mini-program events on a day someone is active
    order_rate: float = 0.3  # valid participants who order
    refund_rate: float = 0.05  # orders refunded
    fraud_rings: int = 0
    ring_size: int = 6
    # delays, medians in seconds (log-normal)
    share_delay: float = 20 * 60  # join → first share
    open_delay: float = 40 * 60  # share → open
    join_delay: float = 90  # open → join
    qualify_delay: float = 3 * 3600  # join → valid
    order_delay: float = 24 * 3600  # valid → first order


@dataclass(frozen=True)
class Campaign:
    """What the model needs to know about the campaign (kept apart from the ORM)."""

    id: int
    slug: str
    starts_at: datetime
    ends_at: datetime
    time_zone: str
    valid_event_name: str
    valid_property: str
    valid_comparison: str
    valid_threshold: Decimal | None
    valid_within_hours: int | None
    attribution_window_hours: int
    channels: tuple[tuple[str, str], ...]  # (code, kind)


class Member:
    """A participant who joins. `link` is (inviter number, channel code) for invitees."""

    __slots__ = (
        "channel",
        "depth",
        "key",
        "leader_of",
        "n",
        "open_key",
        "parent",
        "ring",
        "shares",
        "t_join",
        "t_open",
    )

    def __init__(self, n, key, t_join, t_open, parent, channel, depth, *, ring=-1, open_key=0):
        self.n = n
        self.key = key
        self.t_join = t_join
        self.t_open = t_open  # None for a seed (no link)
        self.parent = parent  # inviter's number, -1 for a seed
        self.channel = channel  # the link's channel (invitees) or where a seed came from
        self.depth = depth
        self.ring = ring  # ≥ 0: a planted fraud account of that ring
        self.leader_of = -1  # ≥ 0: this seed leads that ring
        self.open_key = open_key  # names the open that brought them (its client event id)
        self.shares = None  # [(t, channel)], kept from planning so the writers need not redraw it


@dataclass
class Open:
    """An open of a member's link that did not join: by a visitor or by the sharer's inviter."""

    t: float
    sharer: int
    channel: str
    key: int
    by_inviter: bool


@dataclass
class Plan:
    params: Params
    campaign: Campaign
    start: float  # epoch seconds
    end: float
    members: list[Member] = field(default_factory=list)
    opens: list[Open] = field(default_factory=list)  # opens that did not join
    rings: dict[int, list[int]] = field(default_factory=dict)  # ring → member numbers, leader first
    capped: int = 0  # joins left out because the participant cap was reached

    def name(self, member: Member) -> str:
        return f"{self.prefix}{member.n}"

    @property
    def prefix(self) -> str:
        return f"s{self.params.seed}c{self.campaign.id}-"


def mix(key: int, *parts) -> int:
    """A 64-bit key derived from `key` and `parts` (stable across runs and platforms)."""
    data = ":".join(str(p) for p in (key, *parts)).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


class Clock:
    """Local hours of the campaign's time zone, with DST, cached per UTC hour."""

    def __init__(self, tz: str):
        self.tz = ZoneInfo(tz)
        self._offsets: dict[int, float] = {}

    def local_hour(self, t: float) -> int:
        hour = int(t // 3600)
        offset = self._offsets.get(hour)
        if offset is None:
            when = datetime.fromtimestamp(hour * 3600, UTC).astimezone(self.tz)
            offset = self._offsets[hour] = when.utcoffset().total_seconds()
        return int((t + offset) // 3600) % 24

    def awake(self, rng: random.Random, t: float) -> float:
        """Push `t` forward until people are awake: accepted with the hour's relative traffic."""
        for _ in range(48):
            if rng.random() * DIURNAL_MAX < DIURNAL[self.local_hour(t)]:
                return t
            t += rng.uniform(1800, 5400)
        return t


def poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


class Model:
    """The model for one campaign and parameter set: the plan and each member's detail."""

    def __init__(self, params: Params, campaign: Campaign, *, start: float, end: float):
        self.p = params
        self.c = campaign
        self.start, self.end = start, end
        self.clock = Clock(campaign.time_zone)
        codes = dict(campaign.channels)
        chosen = [(code, w) for code, w in params.channels if w > 0] or [(code, 1.0) for code in codes]
        unknown = [code for code, _ in chosen if code not in codes]
        if unknown:
            raise ValueError(f"the campaign has no channel {', '.join(unknown)}")
        total = sum(w for _, w in chosen) or 1.0
        self.mix_codes = [code for code, _ in chosen]
        self.mix_cum = list(_cumulative([w / total for _, w in chosen]))
        mean_reach = sum(w / total * CHANNEL_REACH.get(codes[c], 1.0) for c, w in chosen) or 1.0
        self.reach = {c: CHANNEL_REACH.get(codes[c], 1.0) / mean_reach for c, _ in chosen}
        shares = max(params.shares_per_sharer, 1.0)
        # mean opens per share so that sharers bring `branching` joins on average
        self.opens_per_share = params.branching / (shares * params.join_rate) if params.join_rate else 0.0
        self.rng = random.Random()
        self.seed_scale = 1.0

    def calibrate(self, *, pilot: tuple[int, int] = (5000, 20000)) -> float:
        """Scale the seeds' arrival rate so about `participants` join by the horizon.

        share_rate × branching alone would give seeds / (1 − R) joins with unlimited time, but
        cascades are cut at the horizon (each generation takes hours), so fewer join. A pilot
        plan of the campaign's size within `pilot` (same days, delays and rates; the shortfall
        does not depend on the size, the noise does) measures the shortfall."""
        p = self.p
        size = min(max(p.participants, pilot[0]), pilot[1])
        small = Model(
            Params(**{**p.__dict__, "participants": size, "fraud_rings": 0}),
            self.c,
            start=self.start,
            end=self.end,
        )
        joined = len(small.plan(cap=10 * small.p.participants).members)
        self.seed_scale = small.p.participants / joined if joined else 1.0
        return self.seed_scale

    # --- structure -----------------------------------------------------------------------
    def channel(self, rng: random.Random) -> str:
        x = rng.random()
        for code, cum in zip(self.mix_codes, self.mix_cum, strict=True):
            if x < cum:
                return code
        return self.mix_codes[-1]

    def shares_and_opens(self, member: Member, *, force_share: bool = False):
        """(shares [(t, channel)], opens [(t, share index, joins, t_join, open key)]) of a member."""
        p, rng = self.p, self.rng
        rng.seed(member.key)
        if member.ring >= 0 or not (force_share or rng.random() < p.share_rate):
            return [], []
        count = 1 + _geometric(rng, max(p.shares_per_sharer, 1.0) - 1.0)
        shares, t = [], member.t_join
        for i in range(count):
            t += lognormal(rng, p.share_delay if i == 0 else 6 * 3600, 1.2 if i == 0 else 1.0)
            t = self.clock.awake(rng, t)
            shares.append((t, self.channel(rng)))
        opens = []
        window = self.c.attribution_window_hours * 3600
        for i, (t_share, code) in enumerate(shares):
            for j in range(poisson(rng, self.opens_per_share * self.reach[code])):
                t_open = self.clock.awake(rng, t_share + lognormal(rng, p.open_delay, 1.3))
                joins = rng.random() < p.join_rate
                t_join = t_open + max(5.0, lognormal(rng, p.join_delay, 0.8)) if joins else None
                if t_join is not None and t_join - t_open >= window:
                    t_join = None
                opens.append((t_open, i, t_join is not None, t_join, mix(member.key, "o", i, j)))
        return shares, opens

    def seeds(self):
        """Seed participants (no inviter) as (t, key, channel), in time order: a Poisson process
        thinned by the hour's traffic, drawn per day so a longer horizon keeps the earlier days."""
        p = self.p
        reproduction = p.share_rate * p.branching
        seeds = p.participants * (1.0 - reproduction if reproduction < 1 - SEED_SHARE else SEED_SHARE)
        per_second = seeds * self.seed_scale / (p.days * 86400) if p.days > 0 else 0.0
        found = []
        day = 0
        while self.start + day * 86400 < self.end:
            lo = self.start + day * 86400
            hi = min(lo + 86400, self.end)
            rng = random.Random(mix(p.seed, "seeds", day))
            candidates = poisson(rng, per_second * 86400 * DIURNAL_MAX / DIURNAL_MEAN)
            for i in range(candidates):
                t = lo + rng.random() * 86400
                if rng.random() * DIURNAL_MAX < DIURNAL[self.clock.local_hour(t)] and t < hi:
                    found.append((t, mix(p.seed, "seed", day, i), self.channel(rng)))
            day += 1
        found.sort()
        return found

    def plan(self, *, cap: int | None = None) -> Plan:
        """Every join up to the horizon (or the first `cap`), in join order; rings planted."""
        p = self.p
        plan = Plan(params=p, campaign=self.c, start=self.start, end=self.end)
        cap = p.participants if cap is None else cap
        heap: list = []  # (t_join, key, kind, (t_open, parent, channel, depth, ring, open key))
        for t, key, code in self.seeds():
            heapq.heappush(heap, (t, key, SEED, (None, -1, code, 0, -1, 0)))
        for ring in range(p.fraud_rings):
            rng = random.Random(mix(p.seed, "ring", ring))
            t = self.start + rng.uniform(0.1, 0.7) * (self.end - self.start)
            key = mix(p.seed, "leader", ring)
            heapq.heappush(heap, (t, key, LEADER, (None, -1, self.channel(rng), 0, ring, 0)))
        rings: dict[int, list[int]] = {}
        while heap:
            t_join, key, kind, (t_open, parent, code, depth, ring, open_key) = heapq.heappop(heap)
            if t_join >= self.end:
                break
            if len(plan.members) >= cap:
                plan.capped += 1 + len(heap)
                break
            member = Member(len(plan.members), key, t_join, t_open, parent, code, depth, open_key=open_key)
            plan.members.append(member)
            if kind == LEADER:  # shares once more, and the ring's accounts join through that share
                member.leader_of = ring
                rings[ring] = [member.n]
                self._plant_ring(member, heap)
            elif kind == RING:
                member.ring = ring
                rings[ring].append(member.n)
                continue
            shares, opens = self.shares_and_opens(member, force_share=kind == LEADER)
            member.shares = shares
            for j, (t_o, i, joins, t_j, okey) in enumerate(opens):
                if joins:
                    child = mix(member.key, "c", j)
                    heapq.heappush(
                        heap, (t_j, child, SEED, (t_o, member.n, shares[i][1], member.depth + 1, -1, okey))
                    )
                elif t_o < self.end:
                    plan.opens.append(Open(t_o, member.n, shares[i][1], okey, by_inviter=False))
        plan.rings = rings
        for o in plan.opens:  # two in five non-joining opens are the sharer's own inviter
            o.by_inviter = plan.members[o.sharer].parent >= 0 and (o.key % 5) < 2
        plan.opens.sort(key=lambda o: o.t)
        return plan

    def ring_share(self, leader: Member) -> tuple[float, str]:
        rng = random.Random(mix(leader.key, "ring-share"))
        return leader.t_join + rng.uniform(600, 3600), self.channel(rng)

    def _plant_ring(self, leader: Member, heap: list) -> None:
        """The ring's accounts open the leader's link from the leader's network and one farm
        device, each joining within 1–2.5 s of opening (faster than a person), one after another."""
        t, code = self.ring_share(leader)
        rng = random.Random(mix(leader.key, "ring"))
        for k in range(self.p.ring_size):
            t += rng.uniform(20, 90)
            t_join = t + rng.uniform(1.0, 2.5)
            key = mix(leader.key, "r", k)
            payload = (t, leader.n, code, leader.depth + 1, leader.leader_of, mix(key, "o"))
            heapq.heappush(heap, (t_join, key, RING, payload))

    # --- detail -------------------------------------------------------------------------
    def identity(self, key: int) -> tuple[str, str, str]:
        """(device id, IP, user agent) of a participant or visitor."""
        rng = random.Random(mix(key, self.c.id, "id"))  # another campaign: other phones
        device = f"{rng.getrandbits(128):032x}"
        ip = f"{rng.randint(36, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        return device, ip, USER_AGENTS[rng.randrange(len(USER_AGENTS))]

    def detail(self, member: Member) -> dict:
        """What a member does besides joining and sharing: client event batches (received at,
        events), server events (received at, event) and whether they became valid."""
        p, c = self.p, self.c
        rng = random.Random(mix(member.key, "detail"))
        out = {"client": [], "server": [], "valid_at": None}
        if member.ring >= 0:  # fraud accounts join and do nothing else
            return out
        # the first session, right after joining
        events, t = [("visit", member.t_join + rng.uniform(1, 5))], member.t_join
        for _ in range(poisson(rng, max(p.events_per_day - 1, 0))):
            t = events[-1][1] + rng.uniform(5, 120)
            events.append(("page_view", t))
        out["client"].append((events[-1][1] + rng.uniform(0.2, 3.0), events))
        # coming back on later days (calendar days of the campaign's zone, roughly)
        day = 1
        while member.t_join + day * 86400 < self.end:
            if rng.random() < p.retention / math.sqrt(day):
                t = self.clock.awake(rng, member.t_join + day * 86400 + rng.uniform(-4, 4) * 3600)
                events = [("visit", t)]
                for _ in range(poisson(rng, max(p.events_per_day - 1, 0))):
                    events.append(("page_view", events[-1][1] + rng.uniform(5, 180)))
                if events[-1][1] < self.end:
                    out["client"].append((events[-1][1] + rng.uniform(0.2, 3.0), events))
            day += 1
        # qualifying: the campaign's valid event, through the business backend
        makes_valid = c.valid_event_name != "join"
        qualifies = rng.random() < p.qualify_rate
        limit = (c.valid_within_hours or 24 * 30) * 3600 * 0.9
        t_valid = member.t_join + min(lognormal(rng, p.qualify_delay, 1.2), limit)
        progress = c.valid_property and rng.random() < 0.5
        if makes_valid and progress:  # a step below the threshold first (or instead)
            t_p = member.t_join + (t_valid - member.t_join) * rng.uniform(0.2, 0.8)
            if t_p < self.end:
                out["server"].append(("p", t_p, c.valid_event_name, {c.valid_property: self.below()}))
        if qualifies and (t_valid if makes_valid else member.t_join) < self.end:
            if makes_valid:
                props = {c.valid_property: self.meets(rng)} if c.valid_property else {}
                out["server"].append(("v", t_valid, c.valid_event_name, props))
            else:
                t_valid = member.t_join
            out["valid_at"] = t_valid
            if rng.random() < p.order_rate:
                t = t_valid
                for k in range(1 + (rng.random() < 0.3)):
                    t = self.clock.awake(rng, t + lognormal(rng, p.order_delay, 1.0))
                    amount = PRICES[rng.randrange(len(PRICES))]
                    if t < self.end:
                        order = f"{member.key:x}-{k}"
                        out["server"].append(
                            ("o", t, "order_paid", {"order_id": order, "amount": str(amount)})
                        )
                        t_r = t + lognormal(rng, 2 * 86400, 0.8)
                        if rng.random() < p.refund_rate and t_r < self.end:
                            out["server"].append(("r", t_r, "order_refunded", {"order_id": order}))
        out["server"].sort(key=lambda e: e[1])
        return out

    def meets(self, rng: random.Random):
        """A property value that meets the campaign's valid-user rule."""
        c = self.c
        threshold = c.valid_threshold if c.valid_threshold is not None else Decimal("1")
        if c.valid_comparison == "eq":
            return float(threshold)
        if c.valid_comparison in ("lt", "lte"):
            return float(threshold) - rng.uniform(0.01, 0.3) * max(abs(float(threshold)), 1)
        return round(float(threshold) + rng.uniform(0.001, 0.4) * max(abs(float(threshold)), 1 - 0.001), 3)

    def below(self):
        """A property value that does not meet it (a step of progress)."""
        c = self.c
        threshold = float(c.valid_threshold) if c.valid_threshold is not None else 1.0
        if c.valid_comparison in ("lt", "lte"):
            return threshold + 0.5 * max(abs(threshold), 1)
        return round(threshold * 0.5, 3) if threshold > 0 else threshold - 1


def _cumulative(weights):
    total = 0.0
    for w in weights:
        total += w
        yield total


def _geometric(rng: random.Random, mean: float) -> int:
    """0, 1, 2… with the given mean (failures before a success)."""
    if mean <= 0:
        return 0
    q = mean / (1 + mean)
    k = 0
    while rng.random() < q:
        k += 1
    return k


def epoch(when: datetime) -> float:
    return when.timestamp()


def at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


ONE_SECOND = timedelta(seconds=1)
