"""Paying approved cash rewards through WeChat Pay, exactly once.

The intent lives in PostgreSQL (a Payout row per reward, with a stable bill number),
not in the broker: a task only says "drive payout 42 forward", and a beat sweeper
re-sends whatever is not final. Before calling WeChat Pay the row is marked SENT and
committed, so after a crash or a timeout we know the money may have moved and *query*
the bill before doing anything else. A new bill number is only ever issued after a
confirmed failure: the payout is FAILED, its reward stays approved, and the next batch
makes attempt 2 (`FSN<reward>A2`), up to FISSION_PAYOUT_MAX_ATTEMPTS.

Clawbacks (negative entries left by refunds of paid commissions) are carried forward: a
batch recovers them from the same beneficiary's next payouts, which send less (or nothing).
What a payout recovers counts once the payout succeeded, and not at all if it failed.

WeChat Pay's daily limits (¥20,000 per recipient, the merchant's limit) are held on our
side with the same conditional counters as reward caps: a payout over them waits.
"""

import logging
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Sum
from django.utils import timezone

from campaigns.models import Campaign
from config.errors import ApplicationError, ConflictError
from referrals import wechatpay
from referrals.models import ClawbackRecovery, Payout, PayoutBatch, Reconciliation, RefundedOrder, Reward

from .reward_triggers import order_lock, rewards_settle_refunded
from .rewards import Refused, _take, reward_move

log = logging.getLogger(__name__)
MAX_DELIVERIES = 3
P = Payout.Status


def payable_rewards(now=None):
    """Approved cash rewards that may go into a batch: payable (hold over), not in a live
    payout, and not failed too often (those wait for a person: reject, or pay by hand)."""
    now = now or timezone.now()
    return (
        Reward.objects.filter(
            status=Reward.Status.APPROVED, kind="cash", amount__gte="0.10", payable_at__lte=now
        )
        .exclude(pk__in=Payout.live().values("reward_id"))
        .exclude(
            pk__in=Payout.objects.filter(status=P.FAILED)
            .values("reward_id")
            .annotate(n=Count("pk"))
            .filter(n__gte=settings.FISSION_PAYOUT_MAX_ATTEMPTS)
            .values("reward_id")
        )
    )


def stuck_rewards():
    """Approved rewards whose payouts failed FISSION_PAYOUT_MAX_ATTEMPTS times: a person
    decides (reject, or pay another way and reject with a note)."""
    return Reward.objects.filter(status=Reward.Status.APPROVED, kind="cash").filter(
        pk__in=Payout.objects.filter(status=P.FAILED)
        .values("reward_id")
        .annotate(n=Count("pk"))
        .filter(n__gte=settings.FISSION_PAYOUT_MAX_ATTEMPTS)
        .values("reward_id")
    )


def _debts(beneficiary_ids) -> dict[int, list[list[int]]]:
    """Per beneficiary, their clawbacks with what is left to recover ([clawback id, fen]),
    oldest first. Locks the clawback rows: two batches never recover the same fen twice."""
    clawbacks = list(
        Reward.objects.select_for_update(of=("self",))
        .filter(beneficiary_id__in=beneficiary_ids, status=Reward.Status.CLAWED_BACK, kind="cash")
        .order_by("pk")
        .values_list("pk", "beneficiary_id", "amount")
    )
    taken = dict(
        ClawbackRecovery.objects.filter(clawback_id__in=[c[0] for c in clawbacks])
        .exclude(payout__status=P.FAILED)
        .values("clawback_id")
        .annotate(fen=Sum("amount_fen"))
        .values_list("clawback_id", "fen")
    )
    debts: dict[int, list[list[int]]] = {}
    for pk, beneficiary_id, amount in clawbacks:
        left = int(-amount * 100) - taken.get(pk, 0)
        if left > 0:
            debts.setdefault(beneficiary_id, []).append([pk, left])
    return debts


def payout_batch_create(*, by, name: str, reward_ids: list[int] | None = None) -> PayoutBatch:
    """See _batch_create. Two finance users batching the same rewards at the same moment:
    one wins, the other is told to try again (the database holds one live attempt)."""
    try:
        return _batch_create(by=by, name=name, reward_ids=reward_ids)
    except IntegrityError as exc:
        raise ConflictError(
            "payout_batch_conflict", "Another batch took some of these rewards at the same moment; try again."
        ) from exc


@transaction.atomic
def _batch_create(*, by, name: str, reward_ids: list[int] | None = None) -> PayoutBatch:
    """A draft batch of payable rewards (the maker's step). Each payout recovers what it can of
    its beneficiary's open clawbacks, but sends at least WeChat Pay's ¥0.10 or nothing."""
    rewards = (
        payable_rewards().select_for_update(skip_locked=True, of=("self",)).select_related("beneficiary")
    )
    if reward_ids is not None:
        rewards = rewards.filter(pk__in=reward_ids)
    rewards = list(rewards.order_by("pk"))
    if not rewards:
        raise ApplicationError(
            "payout_nothing_to_pay",
            "No approved cash rewards are payable (hold over) and waiting for a payout.",
        )
    attempts = dict(
        Payout.objects.filter(reward__in=rewards)
        .values("reward_id")
        .annotate(n=Count("pk"))
        .values_list("reward_id", "n")
    )
    debts = _debts({r.beneficiary_id for r in rewards})
    batch = PayoutBatch.objects.create(name=name, created_by=by)
    recoveries = []
    for r in rewards:
        attempt = attempts.get(r.pk, 0) + 1
        amount = int(r.amount * 100)
        offset = 0
        for debt in debts.get(r.beneficiary_id, []):
            room = amount - offset
            take = min(debt[1], room)
            if take <= 0:
                break
            if 0 < room - take < wechatpay.MIN_FEN:  # leave ¥0.10 to send, or take it all
                take = room - wechatpay.MIN_FEN
            if take <= 0:
                continue
            debt[1] -= take
            offset += take
            recoveries.append((r.pk, debt[0], take))
        r.payout_row = Payout.objects.create(
            batch=batch,
            reward=r,
            attempt=attempt,
            openid=r.beneficiary.openid,
            amount_fen=amount - offset,
            offset_fen=offset,
            out_bill_no=f"FSN{r.pk}A{attempt}",
        )
    by_reward = {r.pk: r.payout_row for r in rewards}  # (payout_one_live_attempt holds the rest)
    ClawbackRecovery.objects.bulk_create(
        ClawbackRecovery(payout=by_reward[reward_id], clawback_id=clawback_id, amount_fen=fen)
        for reward_id, clawback_id, fen in recoveries
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


@transaction.atomic
def payout_batch_discard(*, batch_id: int, by) -> int:
    """Throw away a draft batch (the checker would not approve it): its rewards and the
    clawbacks it would have recovered are free for the next batch. Nothing of a draft was
    sent, so its rows are deleted and its bill numbers are used again. Returns payouts freed."""
    batch = PayoutBatch.objects.select_for_update().filter(pk=batch_id).first()
    if batch is None:
        return 0
    if batch.status != PayoutBatch.Status.DRAFT:
        raise ConflictError(
            "payout_batch_not_draft", "An approved batch is being sent; it cannot be discarded."
        )
    ids = list(batch.payouts.select_for_update().values_list("pk", flat=True))
    ClawbackRecovery.objects.filter(payout_id__in=ids).delete()
    Payout.objects.filter(pk__in=ids).delete()
    batch.delete()
    log.info("payout batch %s discarded by %s (%d payouts)", batch_id, by, len(ids))
    return len(ids)


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
        _hold_order_of(payout)
        if result.amount_fen != payout.amount_fen or result.openid != payout.openid:
            # Never trust an answer about another amount or person: park it for a human.
            payout.status, payout.fail_reason = P.PARKED, "provider answer does not match our record"
        elif result.state == "SUCCESS":
            payout.status = P.SUCCEEDED
            _succeeded(payout)
        elif result.state in ("FAIL", "CANCELLED"):
            payout.status, payout.fail_reason = P.FAILED, result.fail_reason or result.state
            _failed(payout)
        elif result.state == "WAIT_USER_CONFIRM":
            payout.status = P.WAIT_USER_CONFIRM
        payout.provider_state, payout.transfer_bill_no = result.state, result.transfer_bill_no
        payout.save()
        return payout


def _hold_order_of(payout: Payout) -> None:
    """A commission's payout takes its order's lock (after the payout's, before the reward's),
    so a refund of that order is applied wholly before or wholly after the payout's end."""
    source, campaign_id = Reward.objects.values_list("source", "campaign_id").get(pk=payout.reward_id)
    if source.startswith("order:"):
        order_lock(campaign_id, source.removeprefix("order:"))


def _order_refunded(payout: Payout) -> bool:
    source, campaign_id = Reward.objects.values_list("source", "campaign_id").get(pk=payout.reward_id)
    return (
        source.startswith("order:")
        and RefundedOrder.objects.filter(
            campaign_id=campaign_id, order_id=source.removeprefix("order:")
        ).exists()
    )


def _succeeded(payout: Payout) -> None:
    """The reward is paid; what the payout recovered of clawbacks goes back to their budgets."""
    reward = reward_move(
        reward_id=payout.reward_id, to=Reward.Status.PAID, note=f"paid as {payout.out_bill_no}"
    )
    for recovery in payout.recoveries.select_related("clawback"):
        Campaign.objects.filter(pk=recovery.clawback.campaign_id).update(
            budget_spent=F("budget_spent") - Decimal(recovery.amount_fen) / 100
        )
    rewards_settle_refunded(reward=reward)


def _failed(payout: Payout) -> None:
    """No money moved: give back the daily limit counters; the reward waits for attempt n+1
    (or is voided, if its order was refunded meanwhile)."""
    with connection.cursor() as cursor:
        for key, used in payout.cap_keys:
            cursor.execute(
                "UPDATE referrals_rewardcap SET used = GREATEST(used - %s, 0) WHERE key = %s", [used, key]
            )
    payout.cap_keys = []
    payout.save(update_fields=["status", "fail_reason", "cap_keys", "updated_at"])  # before the reward moves
    rewards_settle_refunded(reward=Reward.objects.get(pk=payout.reward_id))


def _daily_limits(cursor, payout: Payout) -> list[list]:
    """Take the recipient's and the merchant's daily counters (platform day) for this payout."""
    day = timezone.localtime().date().isoformat()
    amount = Decimal(payout.amount_fen) / 100
    caps = sorted(
        [
            (f"wxpay:m:{day}", settings.FISSION_PAYOUT_MERCHANT_DAILY_YUAN, "merchant's daily payout limit"),
            (
                f"wxpay:u:{payout.openid}:{day}",
                settings.FISSION_PAYOUT_USER_DAILY_YUAN,
                "recipient's daily limit",
            ),
        ]
    )
    for key, limit, what in caps:
        _take(cursor, key, amount, limit, what)
    return [[key, str(amount)] for key, _, _ in caps]


PAYOUT_LOCKS = 7301  # advisory lock class: "a delivery is driving payout N right now"


def payout_send(*, payout_id: int) -> Payout:
    """Drive one payout forward. Idempotent and safe to run again at any point.

    One delivery drives a payout at a time: a session advisory lock, which PostgreSQL also
    releases when a killed worker's connection drops. A duplicate delivery (the sweeper's,
    while a backlog holds the first) returns at once. Deliveries that died are counted before
    any work, and the count is cleared whenever a delivery finishes: a message that keeps
    killing its worker is parked after MAX_DELIVERIES instead of looping."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [PAYOUT_LOCKS, payout_id])
        if not cursor.fetchone()[0]:
            return Payout.objects.get(pk=payout_id)
    try:
        with transaction.atomic():
            payout = Payout.objects.select_for_update().get(pk=payout_id)
            if payout.status in (*Payout.FINAL, P.PARKED):
                return payout
            payout.deliveries += 1
            if payout.deliveries > MAX_DELIVERIES:
                payout.status = P.PARKED
                payout.fail_reason = f"{MAX_DELIVERIES} deliveries died before finishing"
            payout.save(update_fields=["deliveries", "status", "fail_reason", "updated_at"])
            if payout.status == P.PARKED:
                return payout
        try:
            payout = _drive(payout_id)
        finally:
            Payout.objects.filter(pk=payout_id).update(deliveries=0)
        payout.deliveries = 0
        return payout
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [PAYOUT_LOCKS, payout_id])


def _drive(payout_id: int) -> Payout:
    with transaction.atomic():
        payout = Payout.objects.select_for_update().get(pk=payout_id)
        if payout.status in (*Payout.FINAL, P.PARKED):
            return payout
        maybe_sent = payout.status in (P.SENT, P.WAIT_USER_CONFIRM)
        if (
            payout.status == P.QUEUED
            and not PayoutBatch.objects.filter(
                pk=payout.batch_id, status=PayoutBatch.Status.APPROVED
            ).exists()
        ):
            return payout  # a draft batch is sent only once a checker approved it
        if payout.status == P.QUEUED:
            _hold_order_of(payout)
            # Locked after the payout (and its order), as _apply does: never send for a reward
            # that is no longer approved (rejected, voided or held since the batch was made),
            # nor a commission whose order was refunded since.
            status = (
                Reward.objects.select_for_update().values_list("status", flat=True).get(pk=payout.reward_id)
            )
            if status != Reward.Status.APPROVED or _order_refunded(payout):
                why = (
                    "the order was refunded"
                    if status == Reward.Status.APPROVED
                    else f"the reward is {status}"
                )
                payout.status, payout.fail_reason = P.FAILED, f"not sent: {why}"
                _failed(payout)
                payout.save()
                return payout
            if payout.amount_fen == 0:
                # Clawbacks recovered all of it: nothing to send, the reward is paid by netting.
                payout.status, payout.provider_state = P.SUCCEEDED, "NETTED"
                payout.save()
                _succeeded(payout)
                return payout
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    payout.cap_keys = _daily_limits(cursor, payout)
            except Refused as over:
                # Waits for tomorrow's limit; the sweeper tries again.
                payout.fail_reason = f"waiting: {over.message}"[:200]
                payout.save(update_fields=["fail_reason", "updated_at"])
                return payout
            # Marked and committed before the call: from here on, money may have moved.
            payout.status, payout.fail_reason = P.SENT, ""
            payout.save(update_fields=["status", "fail_reason", "cap_keys", "updated_at"])
    try:
        if maybe_sent:
            try:
                result = wechatpay.query(out_bill_no=payout.out_bill_no)
            except wechatpay.TransferRejected as refused:
                if refused.code != "NOT_FOUND":  # not an answer about the bill: ask again later
                    raise wechatpay.TransferUnknown(f"query refused: {refused.code}") from refused
                result = _transfer(payout)  # never created: sending the same bill is safe
        else:
            result = _transfer(payout)
    except wechatpay.TransferRejected as refused:
        with transaction.atomic():
            payout = Payout.objects.select_for_update().get(pk=payout_id)
            if payout.status not in Payout.FINAL:
                reason = f"{refused.code}: {refused}"[:200]
                if maybe_sent:
                    # The first request may still land: only a person (or a later query) can
                    # say no money moved. Never FAILED here, so no new bill number is issued.
                    payout.status, payout.fail_reason = (
                        P.PARKED,
                        f"resend refused after an unknown outcome: {reason}"[:200],
                    )
                else:
                    _hold_order_of(payout)
                    payout.status, payout.fail_reason = P.FAILED, reason
                    _failed(payout)
                payout.save()
        return payout
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
        activity=Reward.objects.values_list("campaign__name", flat=True).get(pk=payout.reward_id),
    )


def payout_recheck(*, payout_id: int) -> Payout:
    """A person asks WeChat Pay again about a parked payout (or one stuck as sent). A final
    answer that matches our record is applied; anything else leaves it as it is."""
    payout = Payout.objects.get(pk=payout_id)
    if payout.status in Payout.FINAL:
        return payout
    try:
        result = wechatpay.query(out_bill_no=payout.out_bill_no)
    except (wechatpay.TransferRejected, wechatpay.TransferUnknown) as exc:
        raise ApplicationError(
            "payout_recheck_failed", f"{payout.out_bill_no}: WeChat Pay said {exc}"
        ) from exc
    if not result.final:
        raise ApplicationError(
            "payout_not_final", f"{payout.out_bill_no} is still {result.state} at WeChat Pay."
        )
    if payout.status == P.PARKED:
        Payout.objects.filter(pk=payout_id, status=P.PARKED).update(status=P.SENT)
    return _apply(payout_id, result)


@transaction.atomic
def payout_mark_failed(*, payout_id: int, by, note: str) -> Payout:
    """A finance user confirmed in the merchant platform that a parked payout's bill moved no
    money: it fails (the reward can be paid again under a new bill number). Recorded."""
    payout = Payout.objects.select_for_update().get(pk=payout_id)
    if payout.status != P.PARKED:
        raise ConflictError("payout_not_parked", f"{payout.out_bill_no} is not parked.")
    if not note.strip():
        raise ApplicationError("payout_note_needed", "Say what the merchant platform showed.")
    _hold_order_of(payout)
    payout.status, payout.fail_reason = P.FAILED, f"marked failed by {by}: {note}"[:200]
    _failed(payout)
    payout.save()
    return payout


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
