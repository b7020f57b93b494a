"""Granting rewards, exactly once, within caps and budgets held by the database, and moving
them along the ledger. What triggers a grant lives in reward_triggers.py.

Lock order, the same for every grant so concurrent grants queue instead of deadlocking:
the reward's unique index, the cap counters (sorted by key), a coupon code (skip-locked),
the campaign row. A move locks the reward row, then its cap counters, then the campaign.
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
from referrals.models import Participant, Payout, ReleaseEvent, Reward, RewardRule, RewardTransition

from .compliance import MIN_CASH

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
    platform_day = timezone.localtime(now).date().isoformat()  # one allowance across campaigns
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
        caps.append(
            (f"g:p{beneficiary_id}:{platform_day}", amount, allowance, "daily allowance per participant")
        )
    return sorted(caps)


def reward_grant(
    *,
    rule: RewardRule,
    beneficiary_id: int,
    source: str,
    device_id: str = "",
    order_amount: Decimal | None = None,
    release_key: str = "",
    now: datetime | None = None,
) -> tuple[Reward, bool]:
    """Grant `rule` to the beneficiary for `source`. Returns (reward, created).

    Idempotent: unique per (rule, beneficiary, source), so a retried event or a
    redelivered task returns the first reward. Caps, a coupon code and the campaign's
    budgets are taken with conditional statements in the same transaction as the reward;
    if any refuses, nothing is written and Refused is raised. With `release_key` (the rule
    releases on an event), a cash reward has no payable time until that event arrives.
    """
    now = now or timezone.now()
    existing = Reward.objects.filter(rule=rule, beneficiary_id=beneficiary_id, source=source).first()
    if existing:
        return existing, False
    if Participant.objects.filter(pk=beneficiary_id, is_blocked=True).exists():
        raise Refused(
            "participant_blocked", "This participant was confirmed as fraud and earns nothing more."
        )
    campaign = rule.campaign
    amount = reward_amount(rule, order_amount=order_amount)
    cash = rule.kind == R.Kind.CASH
    if cash and amount < MIN_CASH:
        raise Refused("below_minimum", f"¥{amount} is below WeChat Pay's smallest transfer (¥{MIN_CASH}).")
    release_key = release_key if cash and rule.release_event else ""
    if release_key and ReleaseEvent.objects.filter(key=release_key[:120]).exists():
        release_key = ""  # the event came before this grant (a slow task): payable as usual
    caps = _caps(rule, campaign, beneficiary_id, device_id, amount, now)
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
                hold_reason=(f"until {rule.release_event}" if release_key else "review hold") if cash else "",
                payable_at=(now if rule.release_event else now + timedelta(hours=rule.hold_hours))
                if cash and not release_key
                else None,
                release_key=release_key[:120],
                cap_keys=[[key, str(used)] for key, used, _, _ in caps],
            )
            with connection.cursor() as cursor:
                for key, used, limit, what in caps:
                    _take(cursor, key, used, limit, what)
                if rule.kind == R.Kind.COUPON:
                    _take_coupon(cursor, rule, reward)
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


def _take_coupon(cursor, rule: RewardRule, reward: Reward) -> None:
    """Give the reward the bank's next free code: one statement, skipping codes that a
    concurrent grant holds, so two grants never get the same code."""
    cursor.execute(
        "UPDATE referrals_couponcode SET reward_id = %s WHERE id = ("
        " SELECT id FROM referrals_couponcode WHERE rule_id = %s AND reward_id IS NULL"
        " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id",
        [reward.pk, rule.pk],
    )
    if cursor.fetchone() is None:
        raise Refused("coupons_used_up", f"The coupon codes of “{rule}” are used up.")


def _give_back_caps(reward: Reward) -> None:
    """A rejected or voided reward no longer uses its caps."""
    with connection.cursor() as cursor:
        for key, used in sorted(reward.cap_keys):
            cursor.execute(
                "UPDATE referrals_rewardcap SET used = GREATEST(used - %s, 0) WHERE key = %s",
                [Decimal(used), key],
            )


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
FRAUD_HOLD = "fraud review"
RISK_CHECK_PENDING = "fraud review: risk check pending"  # WeChat's risk rank could not be read


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
        and Payout.live().filter(reward_id=reward.pk).exists()
    ):
        raise ConflictError("reward_in_payout", "This reward is in a payout batch; it can only be paid now.")
    if to == Reward.Status.APPROVED and reward.hold_reason.startswith(FRAUD_HOLD):
        raise ConflictError(
            "reward_under_review",
            "This reward is held for a fraud review; a fraud reviewer must release it first.",
        )
    if to not in MOVES[reward.status]:
        current, wanted = reward.get_status_display().lower(), Reward.Status(to).label.lower()
        raise ConflictError("reward_illegal_transition", f"A {current} reward cannot become {wanted}.")
    if to in RELEASES_BUDGET and reward.cap_keys:
        _give_back_caps(reward)
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


@transaction.atomic
def reward_hold(*, reward_id: int, by=None, note: str = "", reason: str = FRAUD_HOLD) -> Reward:
    """A fraud reviewer (or fraud scoring) holds a reward: it cannot be approved (or batched)
    until released. Amounts are never touched. Idempotent. `reason` starts with FRAUD_HOLD."""
    reward = Reward.objects.select_for_update().get(pk=reward_id)
    if reward.hold_reason in (reason, FRAUD_HOLD):  # a reviewer's hold is never downgraded
        return reward
    if reward.status in (Reward.Status.PENDING, Reward.Status.APPROVED):
        reward = reward_move(reward_id=reward_id, to=Reward.Status.HELD, by=by, note=note or FRAUD_HOLD)
    elif reward.status == Reward.Status.HELD:
        RewardTransition.objects.create(
            reward=reward,
            from_status=reward.status,
            to_status=reward.status,
            by=by,
            note=(note or FRAUD_HOLD)[:200],
        )
    else:
        raise ConflictError(
            "reward_not_holdable", f"A {reward.get_status_display().lower()} reward cannot be held."
        )
    reward.hold_reason = reason  # what the participant sees; the note stays in the history
    reward.save(update_fields=["hold_reason", "updated_at"])
    return reward


@transaction.atomic
def reward_release(*, reward_id: int, by=None, note: str = "") -> Reward:
    """A fraud reviewer releases a reward they held: it is back under the ordinary review
    hold, for finance to approve when it is payable. Idempotent."""
    reward = Reward.objects.select_for_update().get(pk=reward_id)
    if not reward.hold_reason.startswith(FRAUD_HOLD):
        return reward
    RewardTransition.objects.create(
        reward=reward,
        from_status=reward.status,
        to_status=reward.status,
        by=by,
        note=(note or "released from fraud review")[:200],
    )
    reward.hold_reason = "review hold"
    reward.save(update_fields=["hold_reason", "updated_at"])
    return reward
