"""What earns a reward: joins, valid invitees and milestones, paid orders (and refunds),
mechanics (group completed, price cut completed) and other server events. Every path is
idempotent (grants are unique per rule, beneficiary and source), so a retried event, a
redelivered task or the sweeper re-deriving grants never pays twice.

Who benefits, for triggers about one participant's own act (an event, a completed group or
price cut): "invitee" means that participant, "inviter" their inviter (level 1 or 2).
"""

import logging
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Case, CharField, Exists, F, OuterRef, Q, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from config.errors import ConflictError
from referrals.models import Event, Referral, RefundedOrder, ReleaseEvent, Reward, RewardRule

from .rewards import FRAUD_HOLD, Refused, reward_grant, reward_move

log = logging.getLogger(__name__)
R = RewardRule
ACTOR_TRIGGERS = {R.Trigger.EVENT, R.Trigger.GROUP_COMPLETED, R.Trigger.PRICE_CUT_COMPLETED}


def _inviter_at_level(campaign_id: int, participant_id: int, level: int) -> int | None:
    inviter: int | None = participant_id
    for _ in range(level):  # climb: level 1 is the participant's inviter
        if inviter is None:
            return None
        inviter = (
            Referral.objects.filter(campaign_id=campaign_id, invitee_id=inviter)
            .values_list("inviter_id", flat=True)
            .first()
        )
    return inviter


def _beneficiary(rule: RewardRule, referral: Referral) -> int | None:
    if rule.beneficiary == R.Beneficiary.INVITEE:
        return referral.invitee_id
    if rule.level == 1:
        return referral.inviter_id
    return _inviter_at_level(referral.campaign_id, referral.invitee_id, rule.level)


def _release_key(rule: RewardRule, campaign_id: int, subject: str) -> str:
    """What the hold of a reward of `rule` waits for, e.g. "c3:p812:active_day7"."""
    return f"c{campaign_id}:{subject}:{rule.release_event}" if rule.release_event else ""


def _grant(rule, beneficiary, source, **kwargs) -> Reward | None:
    try:
        reward, created = reward_grant(rule=rule, beneficiary_id=beneficiary, source=source, **kwargs)
    except Refused as refused:
        log.info("reward refused: rule=%s beneficiary=%s code=%s", rule.pk, beneficiary, refused.code)
        return None
    return reward if created else None


def rewards_for_referral(*, referral_id: int, trigger: str, now: datetime | None = None) -> list[Reward]:
    """Grant what the campaign's active rules give when `referral`'s invitee joined or became
    valid, including milestones of the inviter. Idempotent: safe to run again."""
    referral = Referral.objects.select_related("campaign").filter(pk=referral_id).first()
    if referral is None:  # deleted since the task was sent
        return []
    rules = list(
        RewardRule.objects.filter(campaign=referral.campaign, is_active=True).select_related("campaign")
    )
    granted = []
    for rule in rules:
        if rule.trigger == trigger:
            beneficiary = _beneficiary(rule, referral)
            source = f"referral:{referral.pk}:{trigger}"
        elif (
            rule.trigger == R.Trigger.MILESTONE and trigger == R.Trigger.INVITEE_VALID and referral.inviter_id
        ):
            valid = Referral.objects.filter(
                campaign=referral.campaign, inviter_id=referral.inviter_id, status=Referral.Status.VALID
            ).count()
            if valid < rule.milestone:
                continue
            beneficiary, source = referral.inviter_id, f"milestone:{rule.milestone}"
        else:
            continue
        if beneficiary is None:
            continue
        reward = _grant(
            rule,
            beneficiary,
            source,
            device_id=referral.joined_device_id,
            release_key=_release_key(rule, referral.campaign_id, f"p{referral.invitee_id}"),
            now=now,
        )
        if reward:
            granted.append(reward)
    return granted


def _order_key(campaign_id: int, order_id: str) -> str:
    return f"order:{campaign_id}:{order_id}"


def order_lock(campaign_id: int, order_id: str) -> None:
    """order_paid, order_refunded and the end of a commission's payout run one at a time per
    order (a transaction-scoped advisory lock; taken before any reward row of the order)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [_order_key(campaign_id, order_id)]
        )


@contextmanager
def _order_session_lock(campaign_id: int, order_id: str):
    """The same lock, held across several transactions (one per grant, so that grants to two
    levels never hold the campaign row while waiting for another grant's cap counters)."""
    key = _order_key(campaign_id, order_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [key])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])


def rewards_for_order(*, campaign_id: int, buyer_id: int, order_id: str, amount: Decimal) -> list[Reward]:
    """Commissions on a paid order reported by the business backend. Idempotent per
    (rule, beneficiary, order): a re-sent order_paid pays nothing twice, and an order already
    refunded (its refund handled first) earns nothing."""
    with _order_session_lock(campaign_id, order_id):
        return _commissions(campaign_id=campaign_id, buyer_id=buyer_id, order_id=order_id, amount=amount)


# Mechanics that own who earns an order's commission register a function here (in their
# AppConfig.ready): `decide(campaign_id=, buyer_id=, order_id=, amount=)` returns
# {level: participant id} (empty: nobody earns), or None when the campaign is not theirs,
# and then the invite tree decides. Distribution answers from its customer bindings.
COMMISSION_BENEFICIARIES: list = []
# Such a mechanic may also add `extra() -> Q` here: paid orders the sweeper re-sends even
# when the buyer has no inviter (distribution: buyers with a binding). The Q sees each
# order_paid event's campaign_id and participant_id through OuterRef.
COMMISSION_SWEEP: list = []


def _commission_levels(campaign_id: int, buyer_id: int, order_id: str, amount: Decimal) -> dict | None:
    for decide in COMMISSION_BENEFICIARIES:
        levels = decide(campaign_id=campaign_id, buyer_id=buyer_id, order_id=order_id, amount=amount)
        if levels is not None:
            return levels
    return None


def _commissions(*, campaign_id: int, buyer_id: int, order_id: str, amount: Decimal) -> list[Reward]:
    if RefundedOrder.objects.filter(campaign_id=campaign_id, order_id=order_id).exists():
        return []
    referral = Referral.objects.filter(campaign_id=campaign_id, invitee_id=buyer_id).first()
    levels = _commission_levels(campaign_id, buyer_id, order_id, amount)
    if not levels and (levels is not None or referral is None or referral.inviter_id is None):
        return []
    granted = []
    for rule in RewardRule.objects.filter(
        campaign_id=campaign_id, is_active=True, trigger=R.Trigger.ORDER_PAID
    ).select_related("campaign"):
        if levels is None:
            beneficiary = _beneficiary(rule, referral)
        else:
            beneficiary = buyer_id if rule.beneficiary == R.Beneficiary.INVITEE else levels.get(rule.level)
        if beneficiary is None:
            continue
        reward = _grant(
            rule,
            beneficiary,
            f"order:{order_id}",
            order_amount=amount,
            device_id=referral.joined_device_id if referral else "",
            release_key=_release_key(rule, campaign_id, f"o{order_id}"),
        )
        if reward:
            granted.append(reward)
    return granted


def _clawback(reward: Reward, why: str) -> bool:
    _, created = Reward.objects.get_or_create(
        rule=reward.rule,
        beneficiary=reward.beneficiary,
        source=f"clawback:{reward.pk}",
        defaults={
            "campaign_id": reward.campaign_id,
            "kind": reward.kind,
            "amount": -reward.amount,
            "status": Reward.Status.CLAWED_BACK,
            "hold_reason": why[:120],
        },
    )
    return created


@transaction.atomic
def rewards_refund_order(*, campaign_id: int, order_id: str) -> dict[str, int]:
    """An order was refunded: void its unpaid commissions (releasing their budget and caps)
    and add a negative clawback entry for each paid one, recovered from the beneficiary's
    later payouts. A commission being paid right now is settled when its payout ends (see
    rewards_settle_refunded). Leaves a tombstone so a late order_paid earns nothing.
    Idempotent: a second refund changes nothing."""
    order_lock(campaign_id, order_id)
    RefundedOrder.objects.get_or_create(campaign_id=campaign_id, order_id=order_id)
    voided = clawed = 0
    for reward_id in Reward.objects.filter(
        campaign_id=campaign_id, source=f"order:{order_id}", amount__gt=0
    ).values_list("pk", flat=True):
        reward = Reward.objects.select_for_update().get(pk=reward_id)
        if reward.status in (Reward.Status.PENDING, Reward.Status.HELD, Reward.Status.APPROVED):
            try:
                reward_move(reward_id=reward.pk, to=Reward.Status.VOIDED, note=f"order {order_id} refunded")
            except ConflictError:  # in a payout now: settled when it ends (the payout takes this lock)
                log.info(
                    "refund of order %s: reward %s is in a payout; settled after it", order_id, reward.pk
                )
                continue
            voided += 1
        elif reward.status == Reward.Status.PAID:
            clawed += _clawback(reward, f"order {order_id} refunded")
    return {"voided": voided, "clawed_back": clawed}


def rewards_settle_refunded(*, reward: Reward) -> None:
    """Called when a payout of `reward` ended: if its order was refunded meanwhile, take the
    money back (paid) or void it (the payout failed). Within the caller's transaction, which
    took order_lock before it moved the reward (see payouts._hold_order_of)."""
    if not reward.source.startswith("order:"):
        return
    order_id = reward.source.removeprefix("order:")
    if not RefundedOrder.objects.filter(campaign_id=reward.campaign_id, order_id=order_id).exists():
        return
    if reward.status == Reward.Status.PAID:
        _clawback(reward, f"order {order_id} refunded")
    elif reward.status == Reward.Status.APPROVED:
        reward_move(reward_id=reward.pk, to=Reward.Status.VOIDED, note=f"order {order_id} refunded")


def rewards_for_act(
    *, campaign_id: int, participant_id: int, trigger: str, source: str, event_name: str = ""
) -> list[Reward]:
    """The hook for triggers about one participant's own act: a server event named by a rule
    (trigger "event"), a completed group, a completed price cut. `source` identifies the act
    (e.g. "group:77"), so calling again grants nothing twice."""
    rules = RewardRule.objects.filter(campaign_id=campaign_id, is_active=True, trigger=trigger)
    if trigger == R.Trigger.EVENT:
        rules = rules.filter(trigger_event=event_name)
    granted = []
    device = (
        Referral.objects.filter(campaign_id=campaign_id, invitee_id=participant_id)
        .values_list("joined_device_id", flat=True)
        .first()
    )
    for rule in rules.select_related("campaign"):
        beneficiary = (
            participant_id
            if rule.beneficiary == R.Beneficiary.INVITEE
            else _inviter_at_level(campaign_id, participant_id, rule.level)
        )
        if beneficiary is None:
            continue
        reward = _grant(
            rule,
            beneficiary,
            source[:80],
            device_id=device or "",
            release_key=_release_key(rule, campaign_id, f"p{participant_id}"),
        )
        if reward:
            granted.append(reward)
    return granted


def rewards_release_on_events(rows, *, now: datetime | None = None) -> int:
    """Server events just written (rows with campaign_id, participant_id, name, extra): release
    the holds waiting for them ("invitee active on day 7", "refund window closed"): the
    reward becomes payable now. Runs in the writer's transaction. Events some active rule
    releases on are also remembered (ReleaseEvent), for rewards granted after them."""
    now = now or timezone.now()
    keys = set()
    for row in rows:
        if not row.campaign_id:
            continue
        keys.add(f"c{row.campaign_id}:p{row.participant_id}:{row.name}")
        order_id = str((row.extra.get("properties") or {}).get("order_id", ""))[:60]
        if order_id:
            keys.add(f"c{row.campaign_id}:o{order_id}:{row.name}")
    if not keys:
        return 0
    awaited = set(
        RewardRule.objects.filter(
            is_active=True,
            campaign_id__in={r.campaign_id for r in rows if r.campaign_id},
            release_event__in={r.name for r in rows},
        ).values_list("campaign_id", "release_event")
    )
    seen = [k for k in keys if (int(k.split(":", 1)[0][1:]), k.rsplit(":", 1)[1]) in awaited]
    if seen:
        ReleaseEvent.objects.bulk_create(
            (ReleaseEvent(key=k[:120], at=now) for k in seen), ignore_conflicts=True
        )
    return _release(Reward.objects.filter(release_key__in=keys), now)


def _release(rewards, now) -> int:
    return rewards.filter(status__in=[Reward.Status.PENDING, Reward.Status.HELD]).update(
        release_key="",
        payable_at=now,
        # a fraud reviewer's hold stays: the event only ends the wait
        hold_reason=Case(
            When(hold_reason__startswith=FRAUD_HOLD, then=F("hold_reason")), default=Value("review hold")
        ),
    )


def rewards_expire(*, now: datetime | None = None) -> int:
    """Beat: a reward whose hold waits for an event that never came (the invitee was not
    active on day 7, say) expires after FISSION_REWARD_EVENT_WAIT_DAYS: it is voided, and its
    budget and caps are released. Idempotent."""
    from django.conf import settings

    now = now or timezone.now()
    # first, rewards granted just as their event arrived (neither saw the other commit)
    _release(
        Reward.objects.exclude(release_key="").filter(release_key__in=ReleaseEvent.objects.values("key")), now
    )
    deadline = now - timedelta(days=settings.FISSION_REWARD_EVENT_WAIT_DAYS)
    ReleaseEvent.objects.filter(at__lt=deadline - timedelta(days=7)).delete()  # no reward waits that long
    expired = 0
    stale = Reward.objects.filter(
        created_at__lt=deadline, status__in=[Reward.Status.PENDING, Reward.Status.HELD]
    ).exclude(release_key="")
    for reward_id in list(stale.values_list("pk", flat=True)):
        with transaction.atomic():
            reward = Reward.objects.select_for_update().get(pk=reward_id)
            if not reward.release_key or reward.status not in (Reward.Status.PENDING, Reward.Status.HELD):
                continue  # released (or moved) since it was listed
            event, days = reward.release_key.rsplit(":", 1)[-1], settings.FISSION_REWARD_EVENT_WAIT_DAYS
            try:
                reward_move(
                    reward_id=reward_id,
                    to=Reward.Status.VOIDED,
                    note=f"expired: {event} did not come within {days} days",
                )
            except ConflictError:
                continue
            expired += 1
    return expired


def rewards_sweep(*, now: datetime | None = None, window: timedelta = timedelta(hours=6)) -> dict[str, int]:
    """Beat: re-derive grants a lost task never made. Referrals that joined or became valid in
    the last `window` (but not in the last two minutes, whose tasks may still be running) and
    have no reward for that step, in campaigns with rules for it, are sent to the grant task
    again; paid orders of the window are handled again. All of it is idempotent."""
    from referrals.tasks import order_event_task, rewards_for_referrals_task

    now = now or timezone.now()
    start, end = now - window, now - timedelta(minutes=2)
    sent = {"invitee_joined": 0, "invitee_valid": 0, "order_paid": 0}
    for trigger, time_field, rule_triggers in (
        ("invitee_joined", "joined_at", [R.Trigger.INVITEE_JOINED]),
        ("invitee_valid", "valid_at", [R.Trigger.INVITEE_VALID, R.Trigger.MILESTONE]),
    ):
        campaigns = RewardRule.objects.filter(is_active=True, trigger__in=rule_triggers).values("campaign_id")
        missing = (
            Referral.objects.filter(
                campaign_id__in=campaigns, **{f"{time_field}__gte": start, f"{time_field}__lt": end}
            )
            .annotate(
                granted=Exists(
                    Reward.objects.filter(
                        campaign_id=OuterRef("campaign_id"),
                        source=_concat_source(OuterRef("pk"), trigger),
                    )
                )
            )
            .filter(granted=False)
            .values_list("pk", flat=True)
        )
        chunk: list[int] = []
        for referral_id in missing.iterator(chunk_size=2000):
            chunk.append(referral_id)
            if len(chunk) == 500:
                rewards_for_referrals_task.delay(chunk, trigger)
                chunk = []
            sent[trigger] += 1
        if chunk:
            rewards_for_referrals_task.delay(chunk, trigger)
    campaigns = RewardRule.objects.filter(is_active=True, trigger=R.Trigger.ORDER_PAID).values("campaign_id")
    earns = Q(has_inviter=True)
    for extra in COMMISSION_SWEEP:
        earns |= extra()
    orders = (
        Event.objects.filter(
            name="order_paid", campaign_id__in=campaigns, received_at__gte=start, received_at__lt=end
        )
        .alias(
            order_id=KeyTextTransform("order_id", "properties"),
            has_inviter=Exists(
                Referral.objects.filter(
                    campaign_id=OuterRef("campaign_id"),
                    invitee_id=OuterRef("participant_id"),
                    inviter_id__isnull=False,
                )
            ),
            granted=Exists(
                Reward.objects.filter(
                    campaign_id=OuterRef("campaign_id"),
                    source=Concat(Value("order:"), OuterRef("order_id")),
                )
            ),
            refunded=Exists(
                RefundedOrder.objects.filter(
                    campaign_id=OuterRef("campaign_id"), order_id=OuterRef("order_id")
                )
            ),
        )
        .filter(earns, granted=False, refunded=False)
        .values_list("campaign_id", "participant_id", "properties")
    )
    for campaign_id, participant_id, props in orders.iterator(chunk_size=2000):
        order_id, amount = str((props or {}).get("order_id", ""))[:60], (props or {}).get("amount")
        try:
            amount = Decimal(str(amount)).quantize(Decimal("0.01"))
        except ArithmeticError:
            continue
        if not order_id or amount <= 0:
            continue
        order_event_task.delay("order_paid", campaign_id, participant_id, order_id, str(amount))
        sent["order_paid"] += 1
    return sent


def _concat_source(referral_pk, trigger: str):
    return Concat(Value("referral:"), Cast(referral_pk, CharField()), Value(f":{trigger}"))
