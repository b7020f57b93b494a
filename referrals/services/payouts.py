"""Paying approved cash rewards through WeChat Pay, exactly once.

The intent lives in PostgreSQL (a Payout row per reward, with a stable bill number),
not in the broker: a task only says "drive payout 42 forward", and a beat sweeper
re-sends whatever is not final. Before calling WeChat Pay the row is marked SENT and
committed, so after a crash or a timeout we know the money may have moved and *query*
the bill before doing anything else. A new bill number would only ever be issued after
a confirmed failure; that is a person's decision (the payout is FAILED, the reward stays
approved).
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from config.errors import ApplicationError, ConflictError
from referrals import wechatpay
from referrals.models import Payout, PayoutBatch, Reconciliation, Reward

from .rewards import reward_move

log = logging.getLogger(__name__)
MAX_DELIVERIES = 3
P = Payout.Status


@transaction.atomic
def payout_batch_create(*, by, name: str, reward_ids: list[int] | None = None) -> PayoutBatch:
    """A draft batch of approved cash rewards not yet in any batch (the maker's step)."""
    rewards = (
        Reward.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(status=Reward.Status.APPROVED, kind="cash", amount__gte="0.10")
        .exclude(pk__in=Payout.objects.values("reward_id"))  # not in a batch yet
        .select_related("beneficiary")
    )
    if reward_ids is not None:
        rewards = rewards.filter(pk__in=reward_ids)
    rewards = list(rewards.order_by("pk"))
    if not rewards:
        raise ApplicationError("payout_nothing_to_pay", "No approved cash rewards are waiting for a payout.")
    batch = PayoutBatch.objects.create(name=name, created_by=by)
    Payout.objects.bulk_create(
        Payout(
            batch=batch,
            reward=r,
            openid=r.beneficiary.openid,
            amount_fen=int(r.amount * 100),
            out_bill_no=f"FSN{r.pk}A1",
        )
        for r in rewards
    )
    return batch


@transaction.atomic
def payout_batch_approve(*, batch_id: int, by) -> PayoutBatch:
    """The checker's step: another finance user approves, and the payouts are sent after commit."""
    batch = PayoutBatch.objects.select_for_update().get(pk=batch_id)
    if batch.status == PayoutBatch.Status.APPROVED:
        return batch
    if batch.created_by_id == by.pk:
        raise ConflictError(
            "payout_maker_checker", "A batch must be approved by someone other than its maker."
        )
    batch.status, batch.approved_by, batch.approved_at = PayoutBatch.Status.APPROVED, by, timezone.now()
    batch.save(update_fields=["status", "approved_by", "approved_at"])
    ids = list(batch.payouts.values_list("pk", flat=True))
    transaction.on_commit(lambda: _enqueue(ids))
    return batch


def _enqueue(payout_ids: list[int]) -> None:
    from referrals.tasks import payout_send_task

    for payout_id in payout_ids:
        payout_send_task.delay(payout_id)


def _apply(payout_id: int, result: wechatpay.TransferResult) -> Payout:
    """Apply WeChat Pay's word on a bill, once: only a non-final payout changes."""
    with transaction.atomic():
        payout = Payout.objects.select_for_update().get(pk=payout_id)
        if payout.status in Payout.FINAL:
            return payout
        if result.amount_fen != payout.amount_fen or result.openid != payout.openid:
            # Never trust an answer about another amount or person: park it for a human.
            payout.status, payout.fail_reason = P.PARKED, "provider answer does not match our record"
        elif result.state == "SUCCESS":
            payout.status = P.SUCCEEDED
            reward_move(
                reward_id=payout.reward_id, to=Reward.Status.PAID, note=f"paid as {payout.out_bill_no}"
            )
        elif result.state in ("FAIL", "CANCELLED"):
            payout.status, payout.fail_reason = P.FAILED, result.fail_reason or result.state
        elif result.state == "WAIT_USER_CONFIRM":
            payout.status = P.WAIT_USER_CONFIRM
        payout.provider_state, payout.transfer_bill_no = result.state, result.transfer_bill_no
        payout.save()
        return payout


def payout_send(*, payout_id: int) -> Payout:
    """Drive one payout forward. Idempotent and safe to run again at any point."""
    # The delivery is counted in its own transaction, so a worker killed later still left
    # its mark: a message that kills three workers before sending is parked, not looped.
    with transaction.atomic():
        payout = Payout.objects.select_for_update().get(pk=payout_id)
        if payout.status in (*Payout.FINAL, P.PARKED):
            return payout
        payout.deliveries += 1
        if payout.deliveries > MAX_DELIVERIES and payout.status == P.QUEUED:
            payout.status, payout.fail_reason = P.PARKED, f"{MAX_DELIVERIES} deliveries died before sending"
        if payout.status == P.QUEUED:
            # Locked after the payout, as _apply does: never send for a reward that is no
            # longer approved (rejected, voided or held since the batch was made).
            status = (
                Reward.objects.select_for_update().values_list("status", flat=True).get(pk=payout.reward_id)
            )
            if status != Reward.Status.APPROVED:
                payout.status, payout.fail_reason = P.FAILED, f"not sent: the reward is {status}"
        payout.save(update_fields=["deliveries", "status", "fail_reason", "updated_at"])
        if payout.status in (P.PARKED, P.FAILED):
            return payout
    maybe_sent = payout.status in (P.SENT, P.WAIT_USER_CONFIRM)
    if not maybe_sent:
        # Marked and committed before the call: from here on, money may have moved.
        Payout.objects.filter(pk=payout_id, status=P.QUEUED).update(status=P.SENT, updated_at=timezone.now())
    try:
        if maybe_sent:
            try:
                result = wechatpay.query(out_bill_no=payout.out_bill_no)
            except wechatpay.TransferRejected:  # never created: sending the same bill is safe
                result = _transfer(payout)
        else:
            result = _transfer(payout)
    except wechatpay.TransferRejected as refused:
        with transaction.atomic():
            Payout.objects.filter(pk=payout_id).exclude(status__in=Payout.FINAL).update(
                status=P.FAILED, fail_reason=f"{refused.code}: {refused}"[:200]
            )
        return Payout.objects.get(pk=payout_id)
    except wechatpay.TransferUnknown as unknown:
        log.warning("payout %s outcome unknown (%s); the sweeper will query it", payout_id, unknown)
        return Payout.objects.get(pk=payout_id)
    return _apply(payout_id, result)


def _transfer(payout: Payout) -> wechatpay.TransferResult:
    return wechatpay.transfer(
        out_bill_no=payout.out_bill_no,
        openid=payout.openid,
        amount_fen=payout.amount_fen,
        remark="Campaign reward",
    )


def payout_callback_apply(*, headers, body: bytes) -> Payout | None:
    """A signed callback from WeChat Pay; arrives more than once and may be forged."""
    data = wechatpay.verify_callback(headers, body)
    payout = Payout.objects.filter(out_bill_no=data["out_bill_no"]).first()
    if payout is None:
        return None
    result = wechatpay.TransferResult(
        out_bill_no=data["out_bill_no"],
        transfer_bill_no=data.get("transfer_bill_no", ""),
        state=data["state"],
        amount_fen=int(data["transfer_amount"]),
        openid=data["openid"],
    )
    return _apply(payout.pk, result)


def payouts_sweep(*, older_than: timedelta = timedelta(minutes=2)) -> list[int]:
    """Beat: re-drive every approved payout that is not final and has not moved lately."""
    cutoff = timezone.now() - older_than
    ids = list(
        Payout.objects.filter(
            batch__status=PayoutBatch.Status.APPROVED,
            updated_at__lt=cutoff,
            status__in=[P.QUEUED, P.SENT, P.WAIT_USER_CONFIRM],
        ).values_list("pk", flat=True)
    )
    _enqueue(ids)
    return ids


EXPECTED_STATE = {
    P.SUCCEEDED: {"SUCCESS"},
    P.FAILED: {"FAIL", "CANCELLED"},
    P.WAIT_USER_CONFIRM: {"WAIT_USER_CONFIRM"},
}


def payouts_reconcile(*, day=None) -> Reconciliation:
    """Compare every payout that changed on `day` (UTC, default yesterday) with WeChat Pay's
    record of its bill, and store each difference for finance. WeChat Pay keeps 30 days of
    history, so this runs daily and our own final states are kept for good."""
    from datetime import UTC, datetime
    from datetime import time as dtime

    from referrals.models import Reconciliation

    day = day or (timezone.now() - timedelta(days=1)).date()
    start = datetime.combine(day, dtime.min, tzinfo=UTC)
    rows = (
        Payout.objects.filter(updated_at__gte=start, updated_at__lt=start + timedelta(days=1))
        .exclude(status=P.QUEUED)
        .order_by("pk")
    )
    differences, checked = [], 0
    for payout in rows:
        checked += 1
        try:
            theirs = wechatpay.query(out_bill_no=payout.out_bill_no)
        except wechatpay.TransferRejected as refused:
            if payout.status != P.FAILED or payout.provider_state:
                differences.append(
                    {
                        "out_bill_no": payout.out_bill_no,
                        "ours": payout.status,
                        "theirs": refused.code,
                        "note": "WeChat Pay has no such bill",
                    }
                )
            continue
        except wechatpay.TransferUnknown as unknown:
            differences.append(
                {
                    "out_bill_no": payout.out_bill_no,
                    "ours": payout.status,
                    "theirs": "unknown",
                    "note": f"could not be queried: {unknown}",
                }
            )
            continue
        problems = []
        if theirs.amount_fen != payout.amount_fen:
            problems.append(f"amount {theirs.amount_fen} fen, ours {payout.amount_fen}")
        if theirs.openid != payout.openid:
            problems.append("another recipient")
        expected = EXPECTED_STATE.get(payout.status)
        if expected is not None and theirs.state not in expected:
            problems.append(f"state {theirs.state}")
        if payout.status in (P.SENT, P.PARKED) and theirs.final:
            problems.append(f"final at WeChat Pay ({theirs.state}) but not here")
        if problems:
            differences.append(
                {
                    "out_bill_no": payout.out_bill_no,
                    "ours": payout.status,
                    "theirs": theirs.state,
                    "note": "; ".join(problems),
                }
            )
    return Reconciliation.objects.create(day=day, checked=checked, differences=differences)
