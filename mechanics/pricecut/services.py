"""Price cut: start a task, help it, complete it at the floor price, expire and cancel it,
and let the business backend redeem the cut price once.

Concurrency policy: a help takes the task's row lock first and computes its cut from the
price it reads under the lock, so concurrent helps are applied one after the other and the
last needed helper lands exactly on the floor; a help that arrives after that is refused.
The check constraint `cuttask_floor_exactly_at_the_last_helper` holds even if a code path
forgot the lock, and `cuthelp_once_per_helper` stops a double help. A refused help changes
nothing: its campaign join is rolled back with it.
"""

import logging
import secrets
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import CharField, Exists, OuterRef, Q, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from campaigns.models import Campaign
from config.errors import ApplicationError, ConflictError
from referrals.models import Participant, Reward, RewardRule, ShareLink
from referrals.services import attribution
from referrals.services.events import event_record

from .models import Help, Offer, Task, yuan
from .schedule import cut_for

log = logging.getLogger(__name__)
S = Task.Status
PRICE_CUT_COMPLETED = RewardRule.Trigger.PRICE_CUT_COMPLETED
# A task of a campaign that ended early (or was archived) is due at once: nobody can help it.
CAMPAIGN_OVER = (Campaign.Status.ENDED, Campaign.Status.ARCHIVED)


def offer_for_participants(offer_id: int) -> Offer:
    offer = Offer.objects.select_related("campaign").filter(pk=offer_id).first()
    if (
        offer is None
        or offer.campaign.kind != Campaign.Kind.PRICE_CUT
        or offer.campaign.status in (Campaign.Status.DRAFT, Campaign.Status.ARCHIVED)
    ):
        raise ApplicationError("offer_not_found", "No price-cut offer has this id.", status=404)
    return offer


def task_by_code(code: str) -> Task:
    task = Task.objects.select_related("offer", "campaign", "starter").filter(code=code).first()
    if task is None:
        raise ApplicationError("cut_task_not_found", "No price-cut task has this code.", status=404)
    return task


def cut_task_start(
    *,
    offer_id: int,
    starter: Participant,
    code: str = "",
    device_id: str = "",
    ip: str | None = None,
    now: datetime | None = None,
) -> tuple[Task, bool]:
    """Start cutting the price of an offer, for `hours` (never past the campaign's end). The
    starter joins the campaign first (with the share `code` they arrived with, if any); the
    task's link is the starter's own share link.

    Idempotent: a starter with an open task of this offer gets it back (created False), also
    when two starts race (the partial unique constraint decides)."""
    now = now or timezone.now()
    offer = offer_for_participants(offer_id)
    campaign = offer.campaign
    if not offer.is_active:
        raise ConflictError("offer_inactive", f"“{offer.title}” takes no new price cuts.")
    existing = Task.objects.filter(offer=offer, starter=starter, status=S.OPEN).first()
    if existing is not None:
        return existing, False
    expires_at = min(now + timedelta(hours=offer.hours), campaign.ends_at)
    if expires_at <= now:
        raise ConflictError("campaign_ending", f"“{campaign}” is ending; no new price cuts.")
    try:
        with transaction.atomic():
            joined = attribution.campaign_join(
                campaign=campaign, participant=starter, code=code, ip=ip, device_id=device_id, now=now
            )
            link, _ = attribution.share_link_get_or_create(campaign=campaign, sharer=starter)
            task = Task.objects.create(
                code=secrets.token_urlsafe(9),
                offer=offer,
                campaign=campaign,
                starter=starter,
                share_code=link.code,
                start_price_fen=offer.start_price_fen,
                floor_price_fen=offer.floor_price_fen,
                helpers_needed=offer.helpers_needed,
                schedule=offer.schedule,
                min_cut_fen=offer.min_cut_fen,
                max_cut_fen=offer.max_cut_fen,
                new_users_only=offer.new_users_only,
                seed=secrets.token_hex(16),
                price_fen=offer.start_price_fen,
                started_at=now,
                expires_at=expires_at,
            )
            referral = joined["referral"]
            event_record(
                participant_id=starter.pk,
                campaign_id=campaign.pk,
                name="price_cut_started",
                client_event_id=f"#pricecut:{task.pk}:started",
                occurred_at=now,
                inviter_id=referral.inviter_id,
                channel_id=referral.channel_id,
                properties={"task": task.code, "offer": offer.pk, "helpers_needed": task.helpers_needed},
            )
    except IntegrityError:
        existing = Task.objects.filter(offer=offer, starter=starter, status=S.OPEN).first()
        if existing is None:
            raise
        return existing, False
    return task, True


def _refuse_help(task: Task, helper: Participant, now: datetime) -> None:
    if helper.pk == task.starter_id:
        raise ConflictError("own_task", "You cannot cut your own price; ask friends to help.")
    if task.helps.filter(helper=helper).exists():
        raise ConflictError("already_helped", "You already helped cut this price; each friend helps once.")
    if task.status == S.COMPLETED:
        raise ConflictError("cut_task_completed", "This price is already cut to the floor.")
    if task.status == S.EXPIRED or (task.status == S.OPEN and task.expires_at <= now):
        raise ConflictError("cut_task_expired", "This price cut ran out of time.")
    if task.status == S.CANCELLED:
        raise ConflictError("cut_task_cancelled", "This price cut was cancelled.")


def cut_task_help(
    *,
    task_code: str,
    helper: Participant,
    device_id: str = "",
    ip: str | None = None,
    now: datetime | None = None,
) -> tuple[Help, Task]:
    """Help cut a friend's price: a real `campaign_join` with the starter's share code, then
    one cut by the task's schedule. The last needed helper brings the price to the floor
    exactly and completes the task (PRICE_CUT_COMPLETED rewards, source "pricecut:<id>").

    Refused with a 4xx code, changing nothing: the starter (own_task), a second help
    (already_helped), a completed, expired or cancelled task, the starter's own WeChat
    account or device (same_person), and with `new_users_only` anyone who had joined the
    campaign before (not_a_new_user). Locks the task row."""
    now = now or timezone.now()
    task = task_by_code(task_code)
    _refuse_help(task, helper, now)
    link = ShareLink.objects.select_related("sharer").get(code=task.share_code)
    why_self = attribution.self_referral_reason(link, helper, device_id)
    if why_self:
        raise ConflictError(
            "same_person", f"This price cut was started from {why_self}; it needs other people."
        )
    with transaction.atomic():
        task = Task.objects.select_for_update().select_related("campaign").get(pk=task.pk)
        _refuse_help(task, helper, now)  # again, under the lock: a racing help may have finished it
        joined = attribution.campaign_join(
            campaign=task.campaign,
            participant=helper,
            code=task.share_code,
            ip=ip,
            device_id=device_id,
            now=now,
        )
        if task.new_users_only and not joined["created"]:
            raise ConflictError(
                "not_a_new_user", "Only friends who are new to this campaign may help cut this price."
            )
        seq = task.helper_count + 1
        amount = cut_for(
            schedule=task.schedule,
            total=task.start_price_fen - task.floor_price_fen,
            helpers=task.helpers_needed,
            k=seq,
            remaining=task.remaining_fen,
            min_cut=task.min_cut_fen,
            max_cut=task.max_cut_fen,
            seed=task.seed,
        )
        task.price_fen -= amount
        task.helper_count = seq
        help_ = Help.objects.create(
            task=task,
            helper=helper,
            seq=seq,
            amount_fen=amount,
            price_after_fen=task.price_fen,
            helped_at=now,
        )
        referral = joined["referral"]
        event_record(
            participant_id=helper.pk,
            campaign_id=task.campaign_id,
            name="price_cut_helped",
            client_event_id=f"#pricecut:{task.pk}:helped",
            occurred_at=now,
            inviter_id=referral.inviter_id,
            channel_id=referral.channel_id,
            properties={"task": task.code, "seq": seq, "cut": yuan(amount), "starter": task.starter_id},
        )
        fields = ["price_fen", "helper_count"]
        if seq == task.helpers_needed:
            task.status = S.COMPLETED
            task.completed_at = now
            fields += ["status", "completed_at"]
            event_record(
                participant_id=task.starter_id,
                campaign_id=task.campaign_id,
                name="price_cut_completed",
                client_event_id=f"#pricecut:{task.pk}:completed",
                occurred_at=now,
                properties={"task": task.code, "price": yuan(task.price_fen), "helpers": seq},
            )
            _rewards_after_commit(task)
        task.save(update_fields=fields)
    return help_, task


def _rewards_after_commit(task: Task) -> None:
    from referrals.tasks import rewards_for_act_task

    if RewardRule.objects.filter(
        campaign_id=task.campaign_id, is_active=True, trigger=PRICE_CUT_COMPLETED
    ).exists():
        args = (task.campaign_id, task.starter_id, PRICE_CUT_COMPLETED, f"pricecut:{task.pk}")
        transaction.on_commit(lambda: rewards_for_act_task.delay(*args))


def _end(task: Task, now: datetime, *, status: str, note: str) -> Task:
    task.status = status
    task.ended_at = now
    task.end_note = note[:200]
    task.save(update_fields=["status", "ended_at", "end_note"])
    event_record(
        participant_id=task.starter_id,
        campaign_id=task.campaign_id,
        name=f"price_cut_{status}",
        client_event_id=f"#pricecut:{task.pk}:{status}",
        occurred_at=now,
        properties={"task": task.code, "helpers": task.helper_count, "helpers_left": task.helpers_left},
    )
    return task


@transaction.atomic
def cut_task_expire(*, task_id: int, now: datetime | None = None, force: bool = False, by=None) -> Task:
    """An open task past its time (beat), or ops' "expire now" (`force`), expires: the cut
    price can no longer be bought. Idempotent: a task that is not open, or not yet due, is
    returned unchanged. Locks the task row."""
    now = now or timezone.now()
    task = Task.objects.select_for_update(of=("self",)).select_related("campaign").get(pk=task_id)
    campaign_over = task.campaign.status in CAMPAIGN_OVER
    if task.status != S.OPEN or not (force or campaign_over or task.expires_at <= now):
        return task
    who = f"by {by}" if by else ("as the campaign ended" if campaign_over else "at its deadline")
    return _end(task, now, status=S.EXPIRED, note=f"expired {who}, {task.helpers_left} helper(s) short")


@transaction.atomic
def cut_task_cancel(*, task_id: int, by=None, now: datetime | None = None) -> Task:
    """Ops cancel an open task. Idempotent on a cancelled task; refused for a completed or
    expired one."""
    now = now or timezone.now()
    task = Task.objects.select_for_update().get(pk=task_id)
    if task.status == S.CANCELLED:
        return task
    if task.status != S.OPEN:
        raise ConflictError(
            "cut_task_not_open",
            f"Task {task.code} is {task.get_status_display().lower()}; it cannot be cancelled.",
        )
    return _end(task, now, status=S.CANCELLED, note=f"cancelled by {by}" if by else "cancelled")


def cut_tasks_expire_due(*, now: datetime | None = None) -> int:
    """Beat, every minute: expire every open task past its time, or of a campaign that ended
    early, one transaction each."""
    now = now or timezone.now()
    expired = 0
    due = Task.objects.filter(status=S.OPEN).filter(
        Q(expires_at__lte=now) | Q(campaign__status__in=CAMPAIGN_OVER)
    )
    for task_id in due.values_list("pk", flat=True):
        expired += cut_task_expire(task_id=task_id, now=now).status == S.EXPIRED
    return expired


def cut_rewards_sweep(*, now: datetime | None = None, window: timedelta = timedelta(hours=6)) -> int:
    """Beat: re-send the grant of tasks completed in the last `window` (not the last two
    minutes) that have no reward, in case the grant task was lost. Idempotent by source."""
    from referrals.tasks import rewards_for_act_task

    now = now or timezone.now()
    campaigns = RewardRule.objects.filter(is_active=True, trigger=PRICE_CUT_COMPLETED).values("campaign_id")
    tasks = (
        Task.objects.filter(
            campaign_id__in=campaigns,
            status=S.COMPLETED,
            completed_at__gte=now - window,
            completed_at__lt=now - timedelta(minutes=2),
        )
        .annotate(
            granted=Exists(
                Reward.objects.filter(
                    campaign_id=OuterRef("campaign_id"),
                    source=Concat(Value("pricecut:"), Cast(OuterRef("pk"), CharField())),
                )
            )
        )
        .filter(granted=False)
    )
    sent = 0
    for task_id, campaign_id, starter_id in tasks.values_list("pk", "campaign_id", "starter_id"):
        rewards_for_act_task.delay(campaign_id, starter_id, PRICE_CUT_COMPLETED, f"pricecut:{task_id}")
        sent += 1
    return sent


@transaction.atomic
def cut_task_redeem(*, task_code: str, order_id: str, now: datetime | None = None) -> Task:
    """The business backend sold the item at the cut price: a task is redeemed by one order.
    Idempotent for the same order; refused for another order or an unfinished task."""
    now = now or timezone.now()
    task = Task.objects.select_for_update().filter(code=task_code).first()
    if task is None:
        raise ApplicationError("cut_task_not_found", "No price-cut task has this code.", status=404)
    if task.status != S.COMPLETED:
        raise ConflictError(
            "cut_task_not_completed",
            f"Task {task.code} is {task.get_status_display().lower()}, not completed.",
        )
    if task.redeemed_at is not None:
        if task.order_id == order_id:
            return task
        raise ConflictError("already_redeemed", f"Task {task.code} was redeemed by order {task.order_id}.")
    task.redeemed_at, task.order_id = now, order_id[:64]
    task.save(update_fields=["redeemed_at", "order_id"])
    return task
