"""Simulate a viral campaign: `simulate(...)` plans it with the model and writes it either
through the real services (service mode) or with COPY (bulk mode), then settles the
rewards and scores fraud as the Celery worker and beat would.

Time: the campaign's history is written backdated. Every service call gets the simulated
clock through its `now=` keyword, so `occurred_at` *and* `received_at` (the partition key
that analytics folds from) are the simulated times, as if the events had arrived live.
What the services stamp with the wall clock stays the wall clock: a participant's
`first_seen_at` and `last_login_at`, a share link's `created_at`.
"""

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Q, Sum
from django.test import override_settings
from django.utils import timezone

from campaigns import services as campaign_services
from campaigns.models import Campaign, Channel
from config.errors import ApplicationError
from referrals.models import FraudCase, Participant, Referral, Reward, RewardRule, ShareLink
from referrals.services.partitions import event_partitions_ensure

from . import model

log = logging.getLogger(__name__)

# Channel codes a simulated campaign gets when the mix names them, with their kind.
KINDS = {
    "moments": Channel.Kind.MOMENTS,
    "groups": Channel.Kind.WECHAT_GROUP,
    "wechat_group": Channel.Kind.WECHAT_GROUP,
    "chat": Channel.Kind.CHAT,
    "oa": Channel.Kind.OFFICIAL_ACCOUNT,
    "poster": Channel.Kind.OFFLINE_POSTER,
    "kol": Channel.Kind.KOL,
}
DEFAULT_MIX = (("moments", 0.5), ("groups", 0.3), ("kol", 0.2))
SPEND = {Channel.Kind.KOL: Decimal("20000.00"), Channel.Kind.OFFLINE_POSTER: Decimal("5000.00")}

# Reward rules of a campaign the simulator creates (those of the cold-start demo).
RULES = [
    {
        "name": "¥5 for each friend who builds a resume",
        "trigger": "invitee_valid",
        "amount": Decimal("5.00"),
        "cap_per_participant": 20,
    },
    {
        "name": "Tier: 3 friends → ¥10 more",
        "trigger": "milestone",
        "milestone": 3,
        "amount": Decimal("10.00"),
    },
]


@dataclass
class Summary:
    campaign: str
    mode: str
    participants: int = 0  # joined
    seeds: int = 0
    invited: int = 0
    valid: int = 0
    visitors: int = 0
    opens: int = 0
    events: int = 0
    rewards: int = 0
    rewards_amount: Decimal = Decimal("0.00")
    rings: int = 0
    ring_accounts: int = 0
    fraud_cases: int = 0
    max_depth: int = 0
    seconds: dict = field(default_factory=dict)

    def lines(self) -> list[str]:
        total = sum(self.seconds.values()) or 1e-9
        write = self.seconds.get("write", 0) or 1e-9
        lines = [
            f"campaign {self.campaign} ({self.mode} mode)",
            f"participants {self.participants} joined: {self.seeds} seeds, {self.invited} invited "
            f"(deepest generation {self.max_depth}); {self.visitors} visitors opened and left",
            f"valid {self.valid}; opens {self.opens}; events {self.events}",
            f"rewards {self.rewards} (¥{self.rewards_amount}); rings planted {self.rings} "
            f"({self.ring_accounts} accounts); fraud cases {self.fraud_cases}",
            "timing "
            + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
            + f"; total {total:.1f} s",
            f"rate {self.participants / write:,.0f} participants/s, "
            f"{self.events / write:,.0f} events/s (writing)",
        ]
        return lines if self.seconds else lines[:4]


def parse_mix(text: str) -> tuple[tuple[str, float], ...]:
    """ "moments:0.5,groups:0.3,kol:0.2" → (("moments", 0.5), ...)."""
    mix = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        code, _, weight = part.partition(":")
        mix.append((code.strip(), float(weight) if weight else 1.0))
    return tuple(mix)


def campaign_for_simulation(*, slug: str, days: float, time_zone: str | None, mix, now: datetime) -> Campaign:
    """The campaign by slug, or a new live referral campaign that started `days` ago, with
    the channels of the mix and reward rules. An existing campaign is used as it is: a mix
    naming a channel it does not have is refused (by the model)."""
    campaign = Campaign.objects.filter(slug=slug).first()
    if campaign is None:
        start = (now - timedelta(days=days)).replace(second=0, microsecond=0)
        campaign = Campaign.objects.create(
            slug=slug,
            name=f"Simulated campaign {slug}",
            kind=Campaign.Kind.REFERRAL,
            starts_at=start,
            ends_at=start + timedelta(days=max(days, 1) + 7),
            time_zone=time_zone or "Asia/Shanghai",
            goal_target=10_000,
            budget_total=Decimal("1000000.00"),
            attribution_window_hours=72,
            valid_event_name="resume_completed",
            valid_property="completeness",
            valid_comparison=Campaign.Comparison.GTE,
            valid_threshold=Decimal("0.6"),
            valid_within_hours=168,
        )
        for fields in RULES:
            defaults = {"kind": "cash", "amount_kind": "fixed", **fields}
            RewardRule.objects.create(campaign=campaign, **defaults)
        for code, _ in mix:
            kind = KINDS.get(code, Channel.Kind.OTHER)
            Channel.objects.create(
                campaign=campaign,
                code=code,
                name=code.replace("_", " ").capitalize(),
                kind=kind,
                spend=SPEND.get(kind, 0),
            )
    if campaign.status != Campaign.Status.LIVE:
        try:
            campaign = campaign_services.campaign_launch(campaign_id=campaign.pk, now=now)
        except ApplicationError as exc:
            raise ValueError(f"campaign {slug} cannot be launched: {exc}") from exc
        if campaign.status != Campaign.Status.LIVE:
            raise ValueError(f"campaign {slug} is {campaign.status}, not live: nothing can join it")
    return campaign


def model_campaign(campaign: Campaign, time_zone: str | None = None) -> model.Campaign:
    return model.Campaign(
        id=campaign.pk,
        slug=campaign.slug,
        starts_at=campaign.starts_at,
        ends_at=campaign.ends_at,
        time_zone=time_zone or campaign.time_zone,
        valid_event_name=campaign.valid_event_name,
        valid_property=campaign.valid_property,
        valid_comparison=campaign.valid_comparison,
        valid_threshold=campaign.valid_threshold,
        valid_within_hours=campaign.valid_within_hours,
        attribution_window_hours=campaign.attribution_window_hours,
        channels=tuple(campaign.channels.values_list("code", "kind")),
    )


def build_model(
    campaign: Campaign, params: model.Params, *, now: datetime, time_zone: str | None = None
) -> model.Model:
    """The model over [campaign start, start + days], cut at `now` and at the campaign's end."""
    start = campaign.starts_at
    end = min(start + timedelta(days=params.days), now, campaign.ends_at)
    if end <= start:
        raise ValueError(
            f"campaign {campaign.slug} starts at {start:%Y-%m-%d %H:%M} UTC: nothing to simulate yet"
        )
    return model.Model(
        params, model_campaign(campaign, time_zone), start=start.timestamp(), end=end.timestamp()
    )


def simulate(
    *,
    campaign_slug: str = "simulated",
    participants: int = 3000,
    days: float = 3.0,
    seed: int = 1,
    channels: str | tuple = "",
    branching: float = 2.0,
    share_rate: float = 0.4,
    join_rate: float = 0.4,
    qualify_rate: float = 0.6,
    retention: float = 0.35,
    events_per_day: float = 3.0,
    fraud_rings: int = 0,
    ring_size: int = 6,
    bulk: bool = False,
    time_zone: str | None = None,
    settle: bool = True,
    now: datetime | None = None,
    progress=None,
    live: float = 0,
    stop=None,
) -> Summary:
    """Plan and write a campaign; return what was written. Deterministic for a seed (ids,
    share-link codes and wall-clock stamps aside). Writing the same campaign again with the
    same seed writes nothing new in service mode (every step is idempotent); bulk mode
    refuses a campaign that already has participants. With `live` (seconds), it does not
    backfill: it keeps playing the same plan through the services in real time, every
    `live` seconds, until interrupted (see `live_loop`)."""
    now = now or timezone.now()
    say = progress or (lambda message: None)
    mix = parse_mix(channels) if isinstance(channels, str) else tuple(channels)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    campaign = campaign_for_simulation(
        slug=campaign_slug, days=days, time_zone=time_zone, mix=mix or DEFAULT_MIX, now=now
    )
    if not mix:
        mix = tuple((code, 1.0) for code in campaign.channels.values_list("code", flat=True))
    params = model.Params(
        participants=participants,
        days=days,
        seed=seed,
        channels=mix,
        branching=branching,
        share_rate=share_rate,
        join_rate=join_rate,
        qualify_rate=qualify_rate,
        retention=retention,
        events_per_day=events_per_day,
        fraud_rings=fraud_rings,
        ring_size=ring_size,
    )
    if live:
        return live_loop(campaign, params, time_zone=time_zone, tick=live, progress=say, stop=stop)
    sim = build_model(campaign, params, now=now, time_zone=time_zone)
    event_partitions_ensure(
        start=(campaign.starts_at - timedelta(days=1)).date(), days_ahead=(now - campaign.starts_at).days + 16
    )
    sim.calibrate()
    plan = sim.plan()
    seconds["plan"] = time.perf_counter() - started
    say(f"planned {len(plan.members)} participants, {len(plan.opens)} other opens in {seconds['plan']:.1f} s")
    from .play import fake_wechat, play

    # Logins (service mode) and the fraud pass's risk-rank checks ask a fake WeChat.
    with fake_wechat():
        started = time.perf_counter()
        if bulk:
            from .bulk import write_bulk

            write_bulk(sim, plan, campaign, now=now, progress=say)
        else:
            play(sim, plan, campaign, progress=say)
        seconds["write"] = time.perf_counter() - started
        if settle:
            started = time.perf_counter()
            settle_campaign(campaign, now=now, progress=say)
            seconds["settle"] = time.perf_counter() - started
    summary = summarize(campaign, plan, mode="bulk" if bulk else "service")
    summary.seconds = seconds
    return summary


def settle_campaign(campaign: Campaign, *, now: datetime, progress=None) -> dict:
    """What the worker and beat do after the writes: the grants of every join and valid mark
    (in batches of 500, as the grant task takes them, each at the simulated time of its last
    referral, so caps per day and holds fall on the right days), commissions of paid orders
    and their refunds, then one fraud scoring pass over the campaign. Idempotent: a reward
    already granted (by a worker that got the tasks) is not granted again."""
    from referrals.services.fraud import fraud_score_campaign
    from referrals.services.reward_batch import rewards_for_referrals
    from referrals.services.reward_triggers import rewards_for_order, rewards_refund_order

    say = progress or (lambda message: None)
    triggers = set(
        RewardRule.objects.filter(campaign=campaign, is_active=True).values_list("trigger", flat=True)
    )
    granted = 0
    for trigger, field_name in (("invitee_joined", "joined_at"), ("invitee_valid", "valid_at")):
        wanted = {trigger} | ({"milestone"} if trigger == "invitee_valid" else set())
        if not triggers & wanted:
            continue
        rows = list(
            Referral.objects.filter(campaign=campaign, **{f"{field_name}__isnull": False})
            .order_by(field_name, "pk")
            .values_list("pk", field_name)
        )
        for i in range(0, len(rows), 500):
            chunk = rows[i : i + 500]
            granted += rewards_for_referrals(
                referral_ids=[pk for pk, _ in chunk], trigger=trigger, now=min(chunk[-1][1], now)
            )
    if "order_paid" in triggers:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT participant_id, properties->>'order_id', properties->>'amount' FROM referrals_event "
                "WHERE campaign_id = %s AND name = 'order_paid' ORDER BY occurred_at",
                [campaign.pk],
            )
            for participant_id, order_id, amount in cursor.fetchall():
                granted += len(
                    rewards_for_order(
                        campaign_id=campaign.pk,
                        buyer_id=participant_id,
                        order_id=order_id,
                        amount=Decimal(amount),
                    )
                )
            cursor.execute(
                "SELECT DISTINCT properties->>'order_id' FROM referrals_event "
                "WHERE campaign_id = %s AND name = 'order_refunded'",
                [campaign.pk],
            )
            for (order_id,) in cursor.fetchall():  # the commissions of refunded orders go back
                rewards_refund_order(campaign_id=campaign.pk, order_id=order_id)
    say(f"granted {granted} rewards")
    # WeChat risk-rank lookups are network calls that the beat's scoring pass makes (at most
    # FISSION_RISK_RANK_PER_PASS a pass); this pass scores on the stored signals alone.
    with override_settings(FISSION_RISK_RANK_ENABLED=False):
        scored = fraud_score_campaign(campaign_id=campaign.pk, now=now)
    say(f"fraud scoring: {scored}")
    return {"granted": granted, **scored}


def summarize(campaign: Campaign, plan: model.Plan | None = None, *, mode: str = "") -> Summary:
    refs = Referral.objects.filter(campaign=campaign).aggregate(
        joined=Count("pk"),
        seeds=Count("pk", filter=Q(inviter__isnull=True)),
        valid=Count("pk", filter=Q(valid_at__isnull=False)),
        depth=Count("depth", filter=Q(depth__gt=0)),
    )
    deepest = (
        Referral.objects.filter(campaign=campaign).order_by("-depth").values_list("depth", flat=True)[:1]
    )
    rewards = Reward.objects.filter(campaign=campaign).exclude(status=Reward.Status.CLAWED_BACK)
    money = rewards.aggregate(n=Count("pk"), amount=Sum("amount"))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE name = 'open') "
            "FROM referrals_event WHERE campaign_id = %s",
            [campaign.pk],
        )
        events, opens = cursor.fetchone()
    summary = Summary(
        campaign=campaign.slug,
        mode=mode,
        participants=refs["joined"],
        seeds=refs["seeds"],
        invited=refs["joined"] - refs["seeds"],
        valid=refs["valid"],
        opens=opens,
        events=events,
        rewards=money["n"],
        rewards_amount=money["amount"] or Decimal("0.00"),
        max_depth=deepest[0] if deepest else 0,
        fraud_cases=FraudCase.objects.filter(campaign=campaign).count(),
    )
    if plan is not None:
        summary.visitors = sum(1 for o in plan.opens if not o.by_inviter)
        summary.rings = len(plan.rings)
        summary.ring_accounts = sum(len(r) - 1 for r in plan.rings.values())
    return summary


LIVE_HORIZON = timedelta(hours=1)
LIVE_CATCH_UP = timedelta(minutes=10)


def live_loop(
    campaign: Campaign,
    params: model.Params,
    *,
    time_zone=None,
    tick: float = 5,
    progress=None,
    stop=None,
    rounds: int | None = None,
):
    """Keep the campaign alive: the plan of the same seed and rates, extended past its days,
    played through the services as its clock reaches each action (rewards and fraud scoring
    then happen in the platform's worker, as in production). The plan is prefix-stable, so
    the backfill's people carry on (their later shares, invitees, valid events and visits);
    people the backfill left out (its participant cap) and actions older than ten minutes
    when the loop starts are skipped. `stop()` (default: never) ends the loop, and so does
    the end of the `rounds`-th round (default: no limit)."""
    from .play import Player, actions_in_order, fake_wechat

    say = progress or (lambda message: None)
    stop = stop or (lambda: False)
    sim = build_model(campaign, params, now=timezone.now(), time_zone=time_zone)
    sim.calibrate()  # over the backfill's days: the same arrival rate as the backfill
    done_until = (timezone.now() - LIVE_CATCH_UP).timestamp()
    player = Player(campaign)
    played = skipped = ticks = 0
    with fake_wechat():
        while not stop():
            horizon = min(timezone.now() + LIVE_HORIZON, campaign.ends_at)
            sim.end = horizon.timestamp()
            plan = sim.plan(cap=10**9)
            for member in plan.members:
                player.members[member.n] = plan.name(member)
            actions = deque(actions_in_order(sim, plan, after=done_until))
            say(
                f"live: {len(plan.members)} people planned to {horizon:%H:%M} UTC; "
                f"{len(actions)} actions ahead"
            )
            replan_at = timezone.now() + LIVE_HORIZON / 2
            while not stop() and timezone.now() < replan_at:
                now = timezone.now().timestamp()
                while actions and actions[0][1] <= now and not stop():
                    action = actions.popleft()
                    try:
                        player.do(action)
                        played += 1
                    except (Participant.DoesNotExist, ShareLink.DoesNotExist, KeyError, ApplicationError):
                        skipped += 1  # someone the backfill left out (or their invitees), or not live
                    if (played + skipped) % 100 == 0:
                        say(f"live: {played} actions played, {skipped} skipped")
                done_until = now  # everything up to here is played
                ticks += 1
                if rounds is not None and ticks >= rounds:
                    return summarize(campaign, mode="live")
                time.sleep(tick)
    return summarize(campaign, mode="live")
