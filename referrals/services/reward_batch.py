"""Granting the rewards of many valid invitees at once: the path a server-event batch takes.

Same rules, caps, budgets and uniqueness as `reward_grant`, in a handful of statements per
batch instead of a dozen per reward:

1. the candidates (rule × referral, milestones of the inviters) are worked out in Python
   from three reads;
2. one INSERT … ON CONFLICT DO NOTHING writes the rewards that do not exist yet (sorted, so
   concurrent batches take the unique index in the same order);
3. one upsert adds every cap counter's total, sorted by key (the order `reward_grant` uses);
   the counters stay locked until commit, so reading them back is exact: if any is over
   its limit, the batch's savepoint is rolled back, the candidates that touch no counter
   over its limit are tried again as a batch, and those that do go through
   `reward_grant`, one by one, which refuses exactly the ones that do not fit (a capped
   super-sharer's invitees no longer send a whole batch down the slow path); if the
   campaign's budget refuses the total, every candidate goes one by one; either way,
   candidates that cannot fit whatever comes before them (a full counter, an exhausted
   budget) are refused at once, as `reward_grant` would;
4. one conditional UPDATE per campaign reserves the budget; one INSERT records the moves.

Rules that hand out coupon codes go through `reward_grant` (a code per reward).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, F
from django.utils import timezone
from psycopg.types.json import Jsonb

from campaigns.models import Campaign
from referrals.models import Participant, Referral, ReleaseEvent, Reward, RewardCap, RewardRule

from .compliance import MIN_CASH
from .reward_triggers import _release_key
from .rewards import Refused, _caps, reward_amount, reward_grant

R = RewardRule


@dataclass
class Candidate:
    rule: RewardRule
    beneficiary_id: int
    source: str
    device_id: str
    release_key: str
    amount: Decimal = Decimal("0.00")
    caps: list = field(default_factory=list)
    reward_id: int = 0

    @property
    def key(self) -> tuple:
        return (self.rule.pk, self.beneficiary_id, self.source)


def _candidates(referral_ids: list[int], trigger: str) -> list[Candidate]:
    referrals = list(
        Referral.objects.filter(pk__in=referral_ids).values(
            "pk", "campaign_id", "inviter_id", "invitee_id", "joined_device_id"
        )
    )
    campaign_ids = {r["campaign_id"] for r in referrals}
    rules: dict[int, list[RewardRule]] = defaultdict(list)
    for rule in RewardRule.objects.filter(campaign_id__in=campaign_ids, is_active=True).select_related(
        "campaign"
    ):
        rules[rule.campaign_id].append(rule)
    # level 2: the inviters' own inviters, in one read
    grand: dict[tuple[int, int], int | None] = {}
    if any(r.level == 2 and r.trigger == trigger for rs in rules.values() for r in rs):
        inviters = {r["inviter_id"] for r in referrals if r["inviter_id"]}
        grand = {
            (c, i): up
            for c, i, up in Referral.objects.filter(
                campaign_id__in=campaign_ids, invitee_id__in=inviters
            ).values_list("campaign_id", "invitee_id", "inviter_id")
        }
    # milestones: valid invitees per inviter, in one read
    valid_counts: dict[tuple[int, int], int] = {}
    if trigger == R.Trigger.INVITEE_VALID and any(
        r.trigger == R.Trigger.MILESTONE for rs in rules.values() for r in rs
    ):
        inviters = {r["inviter_id"] for r in referrals if r["inviter_id"]}
        valid_counts = {
            (row["campaign_id"], row["inviter_id"]): row["n"]
            for row in Referral.objects.filter(
                campaign_id__in=campaign_ids, inviter_id__in=inviters, status=Referral.Status.VALID
            )
            .values("campaign_id", "inviter_id")
            .annotate(n=Count("pk"))
        }
    found: dict[tuple, Candidate] = {}
    for ref in referrals:
        campaign_id, inviter = ref["campaign_id"], ref["inviter_id"]
        for rule in rules[campaign_id]:
            if rule.trigger == trigger:
                if rule.beneficiary == R.Beneficiary.INVITEE:
                    beneficiary = ref["invitee_id"]
                elif rule.level == 1:
                    beneficiary = inviter
                else:
                    beneficiary = grand.get((campaign_id, inviter)) if inviter else None
                source = f"referral:{ref['pk']}:{trigger}"
            elif (
                rule.trigger == R.Trigger.MILESTONE
                and trigger == R.Trigger.INVITEE_VALID
                and inviter
                and valid_counts.get((campaign_id, inviter), 0) >= (rule.milestone or 0)
            ):
                beneficiary, source = inviter, f"milestone:{rule.milestone}"
            else:
                continue
            if beneficiary is None:
                continue
            candidate = Candidate(
                rule=rule,
                beneficiary_id=beneficiary,
                source=source,
                device_id=ref["joined_device_id"],
                release_key=_release_key(rule, campaign_id, f"p{ref['invitee_id']}"),
            )
            found.setdefault(candidate.key, candidate)
    return sorted(found.values(), key=lambda c: c.key)


def _one_by_one(candidates: list[Candidate], now) -> int:
    granted = 0
    for c in candidates:
        try:
            _, created = reward_grant(
                rule=c.rule,
                beneficiary_id=c.beneficiary_id,
                source=c.source,
                device_id=c.device_id,
                release_key=c.release_key,
                now=now,
            )
        except Refused:
            continue
        granted += created
    return granted


class _DoesNotFit(Exception):
    """A cap or a budget refuses the batch as a whole: fall back to one by one. `keys`: the
    cap counters that would go over their limit (empty when the budget refused)."""

    def __init__(self, keys: frozenset = frozenset()):
        super().__init__(sorted(keys))
        self.keys = keys


def _insert(cursor, fast: list[Candidate], now) -> list[Candidate]:
    """Write the rewards that do not exist yet; return the candidates that were new."""
    cols: dict[str, list] = defaultdict(list)
    seen = set(
        ReleaseEvent.objects.filter(key__in={c.release_key[:120] for c in fast if c.release_key}).values_list(
            "key", flat=True
        )
    )
    for c in fast:
        cash = c.rule.kind == R.Kind.CASH
        release = c.release_key if cash and c.rule.release_event and c.release_key[:120] not in seen else ""
        cols["rule"].append(c.rule.pk)
        cols["campaign"].append(c.rule.campaign_id)
        cols["beneficiary"].append(c.beneficiary_id)
        cols["source"].append(c.source[:80])
        cols["kind"].append(c.rule.kind)
        cols["amount"].append(c.amount)
        cols["points"].append(c.rule.points or 0)
        cols["status"].append(Reward.Status.HELD if cash else Reward.Status.APPROVED)
        cols["hold"].append((f"until {c.rule.release_event}" if release else "review hold") if cash else "")
        payable = now if c.rule.release_event else now + timedelta(hours=c.rule.hold_hours)
        cols["payable"].append(payable if cash and not release else None)
        cols["device"].append(c.device_id[:64])
        cols["caps"].append(Jsonb([[k, str(used)] for k, used, _, _ in c.caps]))
        cols["release"].append(release[:120])
    cursor.execute(
        """
        INSERT INTO referrals_reward (rule_id, campaign_id, beneficiary_id, source, kind, amount, points,
            status, hold_reason, payable_at, device_id, cap_keys, release_key, created_at, updated_at)
        SELECT r, c, b, s, k, a, p, st, h, pa, d, ck, rk, %s, %s
        FROM unnest(%s::int[], %s::int[], %s::bigint[], %s::text[], %s::text[], %s::numeric[], %s::int[],
                    %s::text[], %s::text[], %s::timestamptz[], %s::text[], %s::jsonb[], %s::text[])
             AS t(r, c, b, s, k, a, p, st, h, pa, d, ck, rk)
        ON CONFLICT (rule_id, beneficiary_id, source) DO NOTHING
        RETURNING id, rule_id, beneficiary_id, source
        """,
        [now, now, *cols.values()],
    )
    by_key = {c.key: c for c in fast}
    new = []
    for reward_id, rule_id, beneficiary_id, source in cursor.fetchall():
        candidate = by_key[(rule_id, beneficiary_id, source)]
        candidate.reward_id = reward_id
        new.append(candidate)
    return new


def _take_caps(cursor, new: list[Candidate]) -> None:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    limits: dict[str, Decimal] = {}
    for c in new:
        for key, used, limit, _ in c.caps:
            totals[key] += used
            limits[key] = limit
    if not totals:
        return
    keys = sorted(totals)
    if over := frozenset(k for k in keys if totals[k] > limits[k]):
        raise _DoesNotFit(over)
    cursor.execute(
        "INSERT INTO referrals_rewardcap (key, used) SELECT * FROM unnest(%s::text[], %s::numeric[]) "
        "ON CONFLICT (key) DO UPDATE SET used = referrals_rewardcap.used + EXCLUDED.used RETURNING key, used",
        [keys, [totals[k] for k in keys]],
    )
    # The counters are locked until commit: what we read back is exactly what holds.
    if over := frozenset(key for key, used in cursor.fetchall() if used > limits[key]):
        raise _DoesNotFit(over)


def _reserve_budgets(new: list[Candidate]) -> None:
    per_campaign: dict[int, Decimal] = defaultdict(Decimal)
    for c in new:
        if c.rule.kind == R.Kind.CASH:
            per_campaign[c.rule.campaign_id] += c.amount
    for campaign_id in sorted(per_campaign):
        total = per_campaign[campaign_id]
        if total and not Campaign.objects.filter(
            pk=campaign_id, budget_total__gte=F("budget_reserved") + F("budget_spent") + total
        ).update(budget_reserved=F("budget_reserved") + total):
            raise _DoesNotFit


def _record(cursor, new: list[Candidate]) -> None:
    cursor.execute(
        "INSERT INTO referrals_rewardtransition (reward_id, from_status, to_status, note, at) "
        "SELECT id, '', st, n, now() FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS t(id, st, n)",
        [
            [c.reward_id for c in new],
            [Reward.Status.HELD if c.rule.kind == R.Kind.CASH else Reward.Status.APPROVED for c in new],
            [f"granted for {c.source}"[:200] for c in new],
        ],
    )


def rewards_for_referrals(*, referral_ids: list[int], trigger: str, now: datetime | None = None) -> int:
    """Grant what the active rules give for these referrals' joins or valid marks (and the
    inviters' milestones). Idempotent, exact under concurrency. Returns rewards created."""
    now = now or timezone.now()
    candidates = _candidates(referral_ids, trigger)
    if not candidates:
        return 0
    blocked = set(
        Participant.objects.filter(
            pk__in={c.beneficiary_id for c in candidates}, is_blocked=True
        ).values_list("pk", flat=True)
    )
    fast, slow = [], []
    for c in candidates:
        if c.beneficiary_id in blocked:
            continue  # confirmed as fraud: earns nothing more
        if c.rule.kind == R.Kind.COUPON:
            slow.append(c)
            continue
        try:
            c.amount = reward_amount(c.rule)
        except Refused:
            continue
        if c.rule.kind == R.Kind.CASH and c.amount < MIN_CASH:
            continue
        c.caps = _caps(c.rule, c.rule.campaign, c.beneficiary_id, c.device_id, c.amount, now)
        fast.append(c)
    return _batch(fast, now, retry=True) + _one_by_one(slow, now)


def _batch(fast: list[Candidate], now, *, retry: bool) -> int:
    """Grant the candidates in one savepoint. When cap counters would go over their limits,
    the candidates touching none of them are tried once more as a batch and the others go
    one by one; when the budget refuses, all go one by one (those that may still fit)."""
    if not fast:
        return 0
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            new = _insert(cursor, fast, now)
            if new:
                _take_caps(cursor, new)
                _reserve_budgets(new)
                _record(cursor, new)
            return len(new)
    except _DoesNotFit as refused:
        fast = _may_fit(fast, refused.keys)
        if not (retry and refused.keys):
            return _one_by_one(fast, now)
        tight = [c for c in fast if any(key in refused.keys for key, *_ in c.caps)]
        clear = [c for c in fast if not any(key in refused.keys for key, *_ in c.caps)]
        # The clear ones first: none of their counters can refuse them, whatever the order.
        return _batch(clear, now, retry=False) + _one_by_one(tight, now)


def _may_fit(candidates: list[Candidate], keys: frozenset) -> list[Candidate]:
    """Leave out the candidates that cannot fit whatever is granted before them: a cap counter
    among `keys` already too full for the candidate alone, or cash beyond what is left of the
    campaign's budget. Within this call counters only grow and budgets only shrink, so
    reward_grant would refuse them; asking it costs a dozen statements each (an exhausted
    budget sent every batch down the slow path)."""
    full = dict(RewardCap.objects.filter(key__in=keys).values_list("key", "used")) if keys else {}
    left = {
        pk: total - reserved - spent
        for pk, total, reserved, spent in Campaign.objects.filter(
            pk__in={c.rule.campaign_id for c in candidates if c.rule.kind == R.Kind.CASH}
        ).values_list("pk", "budget_total", "budget_reserved", "budget_spent")
    }
    return [
        c
        for c in candidates
        if not (c.rule.kind == R.Kind.CASH and c.amount > left.get(c.rule.campaign_id, c.amount))
        and not any(key in full and full[key] + used > limit for key, used, limit, _ in c.caps)
    ]
