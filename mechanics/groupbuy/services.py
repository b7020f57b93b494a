"""Group buying: open, join, complete, close, expire and cancel groups; the signal outbox.

Concurrency policy: every change to a group takes its row lock first (`select_for_update`)
and re-checks the group's state under it, so the K-th and (K+1)-th joins racing for the
last seat are served one after the other: the first completes the group, the second is
refused `group_full`. The check constraint `group_never_overfilled` holds even if a code
path forgot the lock. Every refusal happens before anything is written, or rolls the whole
transaction back (the campaign join included): a refused request changes nothing.
"""

import logging
import secrets
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from campaigns.models import Campaign
from config.errors import ApplicationError, ConflictError
from referrals.models import Participant, Reward, RewardRule, ShareLink
from referrals.services import attribution
from referrals.services.events import event_record

from .models import Deal, Group, Member, Signal

log = logging.getLogger(__name__)
S = Group.Status
M = Member.Status
GROUP_COMPLETED = RewardRule.Trigger.GROUP_COMPLETED
# A group of a campaign that ended early (or was archived) is due at once: nobody can join it.
CAMPAIGN_OVER = (Campaign.Status.ENDED, Campaign.Status.ARCHIVED)


def _code() -> str:
    return secrets.token_urlsafe(9)  # 12 characters, 72 random bits


def deal_for_participants(deal_id: int) -> Deal:
    deal = Deal.objects.select_related("campaign").filter(pk=deal_id).first()
    if (
        deal is None
        or deal.campaign.kind != Campaign.Kind.GROUP_BUY
        or deal.campaign.status in (Campaign.Status.DRAFT, Campaign.Status.ARCHIVED)
    ):
        raise ApplicationError("deal_not_found", "No group-buy deal has this id.", status=404)
    return deal


def group_by_code(code: str) -> Group:
    group = Group.objects.select_related("deal", "campaign", "leader").filter(code=code).first()
    if group is None:
        raise ApplicationError("group_not_found", "No group has this code.", status=404)
    return group


def _filling_membership(deal_id: int, participant_id: int) -> Member | None:
    return (
        Member.objects.select_related("group")
        .filter(deal_id=deal_id, participant_id=participant_id, status=M.JOINED)
        .first()
    )


def group_open(
    *,
    deal_id: int,
    leader: Participant,
    code: str = "",
    device_id: str = "",
    ip: str | None = None,
    order_id: str = "",
    now: datetime | None = None,
) -> tuple[Group, bool]:
    """Open a group as its leader (seat 1), at the deal's group price, for `hours` (never past
    the campaign's end). The leader joins the campaign first (with the share `code` they
    arrived with, if any): the group's link is the leader's own share link.

    Idempotent: a leader whose group of this deal is still filling gets that group back
    (created False), also when two opens race (the partial unique constraint decides)."""
    now = now or timezone.now()
    deal = deal_for_participants(deal_id)
    campaign = deal.campaign
    if not deal.is_active:
        raise ConflictError("deal_inactive", f"“{deal.title}” takes no new groups.")
    filling = _filling_membership(deal.pk, leader.pk)
    if filling is not None:
        return _own_filling_group(filling)
    expires_at = min(now + timedelta(hours=deal.hours), campaign.ends_at)
    if expires_at <= now:
        raise ConflictError("campaign_ending", f"“{campaign}” is ending; no new groups.")
    try:
        with transaction.atomic():
            joined = attribution.campaign_join(
                campaign=campaign, participant=leader, code=code, ip=ip, device_id=device_id, now=now
            )
            link, _ = attribution.share_link_get_or_create(campaign=campaign, sharer=leader)
            group = Group.objects.create(
                code=_code(),
                deal=deal,
                campaign=campaign,
                leader=leader,
                share_code=link.code,
                group_size=deal.group_size,
                capacity=deal.capacity,
                price_fen=deal.group_price_fen,
                tiers=[[t.min_members, t.price_fen] for t in deal.tiers.all()],
                virtual_fill_max_missing=deal.virtual_fill_max_missing if deal.virtual_fill else 0,
                member_count=1,
                opened_at=now,
                expires_at=expires_at,
            )
            Member.objects.create(
                group=group,
                deal=deal,
                participant=leader,
                seat=1,
                price_fen=group.price_fen,
                order_id=order_id[:64],
                joined_at=now,
            )
            referral = joined["referral"]
            event_record(
                participant_id=leader.pk,
                campaign_id=campaign.pk,
                name="group_opened",
                client_event_id=f"#group:{group.pk}:opened",
                occurred_at=now,
                inviter_id=referral.inviter_id,
                channel_id=referral.channel_id,
                properties={"group": group.code, "deal": deal.pk, "size": group.group_size},
            )
    except IntegrityError:
        filling = _filling_membership(deal.pk, leader.pk)
        if filling is None:
            raise
        return _own_filling_group(filling)
    log.info("group %s opened by %s for deal %s", group.pk, leader.pk, deal.pk)
    return group, True


def _own_filling_group(filling: Member) -> tuple[Group, bool]:
    if filling.is_leader:
        return filling.group, False
    raise ConflictError(
        "already_in_a_group",
        "You are in another group of this deal that is still filling; wait until it completes or expires.",
    )


def _refuse_join(group: Group, participant: Participant, now: datetime) -> None:
    """Why `participant` may not join `group` now, as a ConflictError; None if they may."""
    if participant.pk == group.leader_id:
        raise ConflictError("own_group", "You opened this group; share it with friends instead.")
    if group.members.filter(participant=participant).exists():
        raise ConflictError("already_member", "You are already in this group.")
    if group.status == S.EXPIRED or (group.status == S.OPEN and group.expires_at <= now):
        raise ConflictError("group_expired", "This group ran out of time before it filled.")
    if group.status == S.CANCELLED:
        raise ConflictError("group_cancelled", "This group was cancelled.")
    if group.member_count + group.virtual_count >= group.capacity:
        raise ConflictError("group_full", "This group is full.")
    if not group.taking_members:
        raise ConflictError("group_completed", "This group is completed and takes no more members.")
    if _filling_membership(group.deal_id, participant.pk) is not None:
        raise ConflictError(
            "already_in_a_group", "You are in another group of this deal that is still filling."
        )


def group_join(
    *,
    group_code: str,
    participant: Participant,
    device_id: str = "",
    ip: str | None = None,
    order_id: str = "",
    now: datetime | None = None,
) -> tuple[Member, Group]:
    """Join a group through its leader's link: a real `campaign_join` with the leader's share
    code, then the next seat. The K-th member completes the group; in a tiered group later
    members may join until it is full or its time is up.

    Refused with a 4xx code, changing nothing: the leader (own_group), a second join
    (already_member), a full, completed, expired or cancelled group, a participant already
    filling another group of the deal, the leader's own WeChat account or device (same_person).
    Locks the group row."""
    now = now or timezone.now()
    group = group_by_code(group_code)
    _refuse_join(group, participant, now)
    link = ShareLink.objects.select_related("sharer").get(code=group.share_code)
    why_self = attribution.self_referral_reason(link, participant, device_id)
    if why_self:
        raise ConflictError("same_person", f"This group was opened from {why_self}; it needs other people.")
    with transaction.atomic():
        group = Group.objects.select_for_update().select_related("campaign", "leader").get(pk=group.pk)
        _refuse_join(group, participant, now)  # again, under the lock: a racing join may have filled it
        joined = attribution.campaign_join(
            campaign=group.campaign,
            participant=participant,
            code=group.share_code,
            ip=ip,
            device_id=device_id,
            now=now,
        )
        try:
            member = Member.objects.create(
                group=group,
                deal_id=group.deal_id,
                participant=participant,
                seat=group.member_count + group.virtual_count + 1,
                status=M.CONFIRMED if group.status == S.COMPLETED else M.JOINED,
                price_fen=group.price_fen,
                order_id=order_id[:64],
                joined_at=now,
            )
        except IntegrityError:
            # Joining two filling groups of the deal at once: the other group's lock does not
            # cover this one, so groupmember_one_filling_group_per_deal decides.
            raise ConflictError(
                "already_in_a_group", "You are in another group of this deal that is still filling."
            ) from None
        group.member_count += 1
        referral = joined["referral"]
        event_record(
            participant_id=participant.pk,
            campaign_id=group.campaign_id,
            name="group_joined",
            client_event_id=f"#group:{group.pk}:joined",
            occurred_at=now,
            inviter_id=referral.inviter_id,
            channel_id=referral.channel_id,
            properties={"group": group.code, "seat": member.seat, "leader": group.leader_id},
        )
        if group.status == S.COMPLETED:  # a tiered group taking more members after completing
            _signal(member, Signal.Kind.FULFIL, member.price_fen, now)
            _rewards_after_commit(group, [participant.pk])
            if group.member_count + group.virtual_count >= group.capacity:
                _close(group, now)
        elif group.member_count >= group.group_size:
            _complete(group, now)
        group.save(update_fields=_GROUP_STATE)
    return member, group


_GROUP_STATE = [
    "status",
    "member_count",
    "virtual_count",
    "completed_at",
    "closed_at",
    "final_price_fen",
    "ended_at",
    "end_note",
]


def _signal(member: Member, kind: str, amount_fen: int, now: datetime) -> None:
    Signal.objects.get_or_create(
        member=member,
        kind=kind,
        defaults={"group_id": member.group_id, "amount_fen": amount_fen, "created_at": now},
    )


def _complete(group: Group, now: datetime, *, virtual: int = 0) -> None:
    """The group has its K members (`virtual` of them filled by the platform): orders are
    fulfilled, and real members earn the group's rewards unless the platform filled it."""
    group.status = S.COMPLETED
    group.completed_at = now
    group.virtual_count = virtual
    members = list(group.members.filter(status=M.JOINED))
    Member.objects.filter(pk__in=[m.pk for m in members]).update(status=M.CONFIRMED)
    for member in members:
        _signal(member, Signal.Kind.FULFIL, member.price_fen, now)
    event_record(
        participant_id=group.leader_id,
        campaign_id=group.campaign_id,
        name="group_completed",
        client_event_id=f"#group:{group.pk}:completed",
        occurred_at=now,
        properties={"group": group.code, "members": group.member_count, "virtual": virtual},
    )
    if not virtual:
        _rewards_after_commit(group, [m.participant_id for m in members])
    if not group.tiers or group.member_count + virtual >= group.capacity or group.expires_at <= now:
        _close(group, now)


def _close(group: Group, now: datetime) -> None:
    """No more members: the price settles at the tier the real members reached, and each
    member who paid more is refunded the difference."""
    group.closed_at = now
    group.final_price_fen = group.price_for(group.member_count)
    for member in group.members.filter(status=M.CONFIRMED, price_fen__gt=group.final_price_fen):
        _signal(member, Signal.Kind.REFUND_DIFFERENCE, member.price_fen - group.final_price_fen, now)


def _fail(group: Group, now: datetime, *, status: str, note: str) -> None:
    """Expired or cancelled before completing: every member is released and refunded."""
    members = list(group.members.filter(status=M.JOINED))
    Member.objects.filter(pk__in=[m.pk for m in members]).update(status=M.RELEASED, released_at=now)
    for member in members:
        _signal(member, Signal.Kind.REFUND, member.price_fen, now)
    group.status = status
    group.ended_at = now
    group.end_note = note[:200]
    event_record(
        participant_id=group.leader_id,
        campaign_id=group.campaign_id,
        name=f"group_{status}",
        client_event_id=f"#group:{group.pk}:{status}",
        occurred_at=now,
        properties={"group": group.code, "members": group.member_count, "missing": group.seats_left},
    )


def _rewards_after_commit(group: Group, participant_ids: list[int]) -> None:
    from referrals.tasks import rewards_for_act_task

    if not RewardRule.objects.filter(
        campaign_id=group.campaign_id, is_active=True, trigger=GROUP_COMPLETED
    ).exists():
        return
    source = f"group:{group.pk}"
    for pid in participant_ids:
        transaction.on_commit(
            lambda pid=pid: rewards_for_act_task.delay(group.campaign_id, pid, GROUP_COMPLETED, source)
        )


@transaction.atomic
def group_close_due(*, group_id: int, now: datetime | None = None, force: bool = False, by=None) -> Group:
    """The deadline of a group (beat), or ops' "expire now" (`force`): a filling group at most
    `virtual_fill_max_missing` short is completed by the platform, any other expires (members
    released, refunds signalled); a completed tiered group stops taking members and settles
    its price. Idempotent: a group already ended, or not yet due, is returned unchanged."""
    now = now or timezone.now()
    group = Group.objects.select_for_update(of=("self",)).select_related("campaign").get(pk=group_id)
    campaign_over = group.campaign.status in CAMPAIGN_OVER
    if not (force or campaign_over or group.expires_at <= now):
        return group
    if group.status == S.OPEN:
        missing = group.group_size - group.member_count
        if 0 < missing <= group.virtual_fill_max_missing:
            _complete(group, now, virtual=missing)
        else:
            who = f"by {by}" if by else ("as the campaign ended" if campaign_over else "at its deadline")
            _fail(group, now, status=S.EXPIRED, note=f"expired {who}, {missing} member(s) short")
    elif group.status == S.COMPLETED and group.closed_at is None:
        _close(group, now)
    else:
        return group
    group.save(update_fields=_GROUP_STATE)
    return group


@transaction.atomic
def group_cancel(*, group_id: int, by=None, now: datetime | None = None) -> Group:
    """Ops cancel a filling group: members are released and refunds signalled. Idempotent on a
    cancelled group; refused for a completed or expired one (its orders are already decided)."""
    now = now or timezone.now()
    group = Group.objects.select_for_update().get(pk=group_id)
    if group.status == S.CANCELLED:
        return group
    if group.status != S.OPEN:
        raise ConflictError(
            "group_not_open",
            f"Group {group.code} is {group.get_status_display().lower()}; it cannot be cancelled.",
        )
    _fail(group, now, status=S.CANCELLED, note=f"cancelled by {by}" if by else "cancelled")
    group.save(update_fields=_GROUP_STATE)
    return group


def groups_close_due(*, now: datetime | None = None) -> dict[str, int]:
    """Beat, every minute: every running group past its deadline, or of a campaign that ended
    early, one transaction each (a group moved meanwhile by a join or an ops action is
    re-checked under its lock and left alone)."""
    now = now or timezone.now()
    running = Q(status=S.OPEN) | Q(status=S.COMPLETED, closed_at__isnull=True)
    due = Group.objects.filter(running).filter(Q(expires_at__lte=now) | Q(campaign__status__in=CAMPAIGN_OVER))
    counts = {"expired": 0, "completed": 0, "closed": 0}
    for group_id, before in due.order_by("expires_at").values_list("pk", "status"):
        group = group_close_due(group_id=group_id, now=now)
        if before == S.OPEN and group.status == S.EXPIRED:
            counts["expired"] += 1
        elif before == S.OPEN and group.status == S.COMPLETED:
            counts["completed"] += 1
        elif before == S.COMPLETED and group.closed_at is not None:
            counts["closed"] += 1
    return counts


def group_rewards_sweep(*, now: datetime | None = None, window: timedelta = timedelta(hours=6)) -> int:
    """Beat: re-send the grants of groups completed in the last `window` (not the last two
    minutes, whose tasks may still run) that have no reward at all, in case a grant task was
    lost. Granting is idempotent by source, so a resend pays nothing twice."""
    from referrals.tasks import rewards_for_act_task

    now = now or timezone.now()
    campaigns = RewardRule.objects.filter(is_active=True, trigger=GROUP_COMPLETED).values("campaign_id")
    groups = (
        Group.objects.filter(
            campaign_id__in=campaigns,
            status=S.COMPLETED,
            virtual_count=0,
            completed_at__gte=now - window,
            completed_at__lt=now - timedelta(minutes=2),
        )
        .annotate(
            granted=Exists(
                Reward.objects.filter(campaign_id=OuterRef("campaign_id"), source=_source_of(OuterRef("pk")))
            )
        )
        .filter(granted=False)
    )
    sent = 0
    for group_id, campaign_id in groups.values_list("pk", "campaign_id"):
        for pid in Member.objects.filter(group_id=group_id, status=M.CONFIRMED).values_list(
            "participant_id", flat=True
        ):
            rewards_for_act_task.delay(campaign_id, pid, GROUP_COMPLETED, f"group:{group_id}")
            sent += 1
    return sent


def _source_of(group_pk):
    from django.db.models import CharField, Value
    from django.db.models.functions import Cast, Concat

    return Concat(Value("group:"), Cast(group_pk, CharField()))


# The outbox ----------------------------------------------------------------------------------
MAX_SIGNALS = 500


def signals_pending(*, after: int = 0, limit: int = 100) -> list[Signal]:
    """Unacknowledged signals in id order, from after `after`: the business backend pages with
    the last id it saw and acknowledges what it handled."""
    return list(
        Signal.objects.filter(acked_at__isnull=True, pk__gt=after)
        .select_related("group__deal", "member__participant")
        .order_by("pk")[: max(1, min(limit, MAX_SIGNALS))]
    )


def signals_ack(*, ids: list[int], by: str, now: datetime | None = None) -> dict[str, int]:
    """Acknowledge handled signals. Idempotent: acknowledging again changes nothing; ids that
    are unknown are reported, not refused (a retry after our answer was lost is normal)."""
    if len(ids) > MAX_SIGNALS:
        raise ApplicationError(
            "too_many_ids",
            f"Acknowledge at most {MAX_SIGNALS} signals at a time.",
            fields={"ids": ["Too many."]},
        )
    now = now or timezone.now()
    known = set(Signal.objects.filter(pk__in=ids).values_list("pk", flat=True))
    acked = Signal.objects.filter(pk__in=known, acked_at__isnull=True).update(acked_at=now, acked_by=by[:40])
    return {"acked": acked, "already_acked": len(known) - acked, "unknown": len(set(ids) - known)}
