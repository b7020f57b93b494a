"""Granting rewards, exactly once, within caps and budgets held by the database.

Lock order, the same for every grant so concurrent grants queue instead of deadlocking:
the reward's unique index, the cap counters (sorted by key), the campaign row.
"""

import logging
import secrets
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from campaigns.models import Campaign
from config.errors import ApplicationError, ConflictError
from referrals.models import Referral, Reward, RewardRule, RewardTransition

log = logging.getLogger(__name__)
CENT = Decimal("0.01")
R = RewardRule


class Refused(ApplicationError):
    """A grant that a cap or a budget does not allow. Nothing was written."""

    status_code = 409


def reward_amount(rule: RewardRule, *, order_amount: Decimal | None = None) -> Decimal:
    if rule.kind == R.Kind.POINTS:
        return Decimal("0.00")
    if rule.amount_kind == R.AmountKind.RANDOM:
        low, high = int(rule.amount_min * 100), int(rule.amount_max * 100)
        return Decimal(low + secrets.randbelow(high - low + 1)) / 100  # uniform, in whole fen
    if rule.amount_kind == R.AmountKind.PERCENT:
        if order_amount is None or order_amount <= 0:
            raise Refused("order_amount_needed", "A commission needs the paid order's amount.")
        share = (order_amount * rule.percent / 100).quantize(CENT, rounding=ROUND_DOWN)
        return min(share, rule.amount_cap)
    return rule.amount


def _take(cursor, key: str, amount: Decimal, limit: Decimal, what: str) -> None:
    """Add `amount` to the counter `key` only if it stays within `limit`: one statement."""
    if amount > limit:
        raise Refused("cap_reached", f"The {what} is reached.")
    cursor.execute(
        "INSERT INTO referrals_rewardcap (key, used) VALUES (%s, %s) "
        "ON CONFLICT (key) DO UPDATE SET used = referrals_rewardcap.used + EXCLUDED.used "
        "WHERE referrals_rewardcap.used + EXCLUDED.used <= %s RETURNING used",
        [key, amount, limit],
    )
    if cursor.fetchone() is None:
        raise Refused("cap_reached", f"The {what} is reached.")


def _caps(
    rule: RewardRule, campaign: Campaign, beneficiary_id: int, device_id: str, amount: Decimal, now
) -> list[tuple[str, Decimal, Decimal, str]]:
    day = timezone.localtime(now, campaign.tz).date().isoformat()
    caps = []
    if rule.cap_per_participant:
        caps.append(
            (
                f"r{rule.pk}:p{beneficiary_id}",
                Decimal(1),
                Decimal(rule.cap_per_participant),
                "limit of this reward per participant",
            )
        )
    if rule.cap_per_participant_daily:
        caps.append(
            (
                f"r{rule.pk}:p{beneficiary_id}:{day}",
                Decimal(1),
                Decimal(rule.cap_per_participant_daily),
                "daily limit of this reward per participant",
            )
        )
    if rule.cap_per_device and device_id:
        caps.append(
            (
                f"r{rule.pk}:d{device_id}",
                Decimal(1),
                Decimal(rule.cap_per_device),
                "limit of this reward per device",
            )
        )
    if rule.kind == R.Kind.CASH:
        if campaign.budget_daily is not None:
            caps.append((f"c{campaign.pk}:{day}", amount, campaign.budget_daily, "campaign's daily budget"))
        allowance = settings.FISSION_DAILY_ALLOWANCE_PER_PARTICIPANT
        caps.append((f"g:p{beneficiary_id}:{day}", amount, allowance, "daily allowance per participant"))
    return sorted(caps)


def reward_grant(
    *,
    rule: RewardRule,
    beneficiary_id: int,
    source: str,
    device_id: str = "",
    order_amount: Decimal | None = None,
    now: datetime | None = None,
) -> tuple[Reward, bool]:
    """Grant `rule` to the beneficiary for `source`. Returns (reward, created).

    Idempotent: unique per (rule, beneficiary, source), so a retried event or a
    redelivered task returns the first reward. Caps and the campaign's budgets are taken
    with conditional statements in the same transaction as the reward; if any refuses,
    nothing is written and Refused is raised.
    """
    now = now or timezone.now()
    existing = Reward.objects.filter(rule=rule, beneficiary_id=beneficiary_id, source=source).first()
    if existing:
        return existing, False
    campaign = rule.campaign
    amount = reward_amount(rule, order_amount=order_amount)
    cash = rule.kind == R.Kind.CASH
    try:
        with transaction.atomic():
            reward = Reward.objects.create(
                rule=rule,
                campaign=campaign,
                beneficiary_id=beneficiary_id,
                source=source[:80],
                kind=rule.kind,
                amount=amount,
                points=rule.points or 0,
                device_id=device_id[:64],
                status=Reward.Status.HELD if cash else Reward.Status.APPROVED,
                hold_reason="review hold" if cash else "",
                payable_at=now + timedelta(hours=rule.hold_hours) if cash else None,
            )
            with connection.cursor() as cursor:
                for key, used, limit, what in _caps(rule, campaign, beneficiary_id, device_id, amount, now):
                    _take(cursor, key, used, limit, what)
            if cash and not Campaign.objects.filter(
                pk=campaign.pk, budget_total__gte=F("budget_reserved") + F("budget_spent") + amount
            ).update(budget_reserved=F("budget_reserved") + amount):
                raise Refused("budget_exhausted", f"The budget of “{campaign}” is used up.")
            RewardTransition.objects.create(
                reward=reward, to_status=reward.status, note=f"granted for {source}"
            )
    except IntegrityError:  # a concurrent grant of the same (rule, beneficiary, source) won
        return Reward.objects.get(rule=rule, beneficiary_id=beneficiary_id, source=source), False
    return reward, True


MOVES = {
    Reward.Status.PENDING: {Reward.Status.HELD, Reward.Status.APPROVED, Reward.Status.REJECTED},
    Reward.Status.HELD: {Reward.Status.APPROVED, Reward.Status.REJECTED, Reward.Status.VOIDED},
    Reward.Status.APPROVED: {
        Reward.Status.HELD,
        Reward.Status.PAID,
        Reward.Status.REJECTED,
        Reward.Status.VOIDED,
    },
    Reward.Status.PAID: set(),  # never edited: a refund adds a clawback entry instead
    Reward.Status.REJECTED: set(),
    Reward.Status.VOIDED: set(),
    Reward.Status.CLAWED_BACK: set(),
}
RELEASES_BUDGET = {Reward.Status.REJECTED, Reward.Status.VOIDED}


@transaction.atomic
def reward_move(*, reward_id: int, to: str, by=None, note: str = "") -> Reward:
    """Move a reward along the ledger's state machine; record who and when.

    Idempotent (moving to the current state returns it). Rejecting or voiding a cash
    reward releases its reserved budget; paying moves it from reserved to spent.
    Locks the reward row, then the campaign row.
    """
    reward = Reward.objects.select_for_update().get(pk=reward_id)
    if reward.status == to:
        return reward
    if (
        reward.status == Reward.Status.APPROVED
        and to != Reward.Status.PAID
        and Reward.objects.filter(pk=reward.pk, payout__isnull=False)
        .exclude(payout__status="failed")
        .exists()
    ):
        raise ConflictError("reward_in_payout", "This reward is in a payout batch; it can only be paid now.")
    if to not in MOVES[reward.status]:
        current, wanted = reward.get_status_display().lower(), Reward.Status(to).label.lower()
        raise ConflictError("reward_illegal_transition", f"A {current} reward cannot become {wanted}.")
    if reward.kind == R.Kind.CASH and reward.amount:
        budget = Campaign.objects.filter(pk=reward.campaign_id)
        if to in RELEASES_BUDGET:
            budget.update(budget_reserved=F("budget_reserved") - reward.amount)
        elif to == Reward.Status.PAID:
            budget.update(
                budget_reserved=F("budget_reserved") - reward.amount,
                budget_spent=F("budget_spent") + reward.amount,
            )
    RewardTransition.objects.create(
        reward=reward, from_status=reward.status, to_status=to, by=by, note=note[:200]
    )
    reward.status = to
    if to == Reward.Status.APPROVED:
        reward.hold_reason = ""
    reward.save(update_fields=["status", "hold_reason", "updated_at"])
    return reward


def _beneficiary(rule: RewardRule, referral: Referral) -> int | None:
    if rule.beneficiary == R.Beneficiary.INVITEE:
        return referral.invitee_id
    inviter = referral.inviter_id
    for _ in range(rule.level - 1):  # climb to the inviter's inviter
        if inviter is None:
            return None
        inviter = (
            Referral.objects.filter(campaign_id=referral.campaign_id, invitee_id=inviter)
            .values_list("inviter_id", flat=True)
            .first()
        )
    return inviter


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
        try:
            reward, created = reward_grant(
                rule=rule,
                beneficiary_id=beneficiary,
                source=source,
                device_id=referral.joined_device_id,
                now=now,
            )
        except Refused as refused:
            log.info("reward refused: rule=%s beneficiary=%s code=%s", rule.pk, beneficiary, refused.code)
            continue
        if created:
            granted.append(reward)
    return granted


def rewards_for_order(*, campaign_id: int, buyer_id: int, order_id: str, amount: Decimal) -> list[Reward]:
    """Commissions on a paid order reported by the business backend. Idempotent per
    (rule, beneficiary, order): a re-sent order_paid pays nothing twice."""
    referral = Referral.objects.filter(campaign_id=campaign_id, invitee_id=buyer_id).first()
    if referral is None or referral.inviter_id is None:
        return []
    granted = []
    for rule in RewardRule.objects.filter(
        campaign_id=campaign_id, is_active=True, trigger=R.Trigger.ORDER_PAID
    ):
        beneficiary = _beneficiary(rule, referral)
        if beneficiary is None:
            continue
        try:
            reward, created = reward_grant(
                rule=rule,
                beneficiary_id=beneficiary,
                source=f"order:{order_id}",
                order_amount=amount,
                device_id=referral.joined_device_id,
            )
        except Refused as refused:
            log.info("commission refused: rule=%s order=%s code=%s", rule.pk, order_id, refused.code)
            continue
        if created:
            granted.append(reward)
    return granted


@transaction.atomic
def rewards_refund_order(*, campaign_id: int, order_id: str) -> dict[str, int]:
    """An order was refunded: void its unpaid commissions (releasing their budget) and add a
    negative clawback entry for each paid one. Idempotent: a second refund changes nothing."""
    voided = clawed = 0
    for reward in Reward.objects.filter(campaign_id=campaign_id, source=f"order:{order_id}", amount__gt=0):
        if reward.status in (Reward.Status.PENDING, Reward.Status.HELD, Reward.Status.APPROVED):
            try:
                reward_move(reward_id=reward.pk, to=Reward.Status.VOIDED, note=f"order {order_id} refunded")
            except ConflictError:  # being paid right now: finance sees it (known gap: no later clawback)
                log.warning("refund of order %s: reward %s is in a payout; not voided", order_id, reward.pk)
                continue
            voided += 1
        elif reward.status == Reward.Status.PAID:
            _, created = Reward.objects.get_or_create(
                rule=reward.rule,
                beneficiary=reward.beneficiary,
                source=f"clawback:{reward.pk}",
                defaults={
                    "campaign_id": campaign_id,
                    "kind": reward.kind,
                    "amount": -reward.amount,
                    "status": Reward.Status.CLAWED_BACK,
                    "hold_reason": f"order {order_id} refunded",
                },
            )
            clawed += created
    return {"voided": voided, "clawed_back": clawed}
