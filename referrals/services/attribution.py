"""Share links, opens and joins: who invited whom, and why.

Sharing never creates a reward: nothing in this module (nor the share event) has a
path to the reward ledger. WeChat forbids rewarding the act of sharing.
"""

import secrets

from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.models import Campaign, Channel
from config.errors import ApplicationError, ConflictError
from referrals.models import Participant, Referral, ShareLink, ShareOpen

from .events import event_record

CODE_BYTES = 12  # 16 URL-safe characters: fits a mini-program scene (≤ 32) with 96 random bits


def campaign_for_participants(slug: str) -> Campaign:
    campaign = (
        Campaign.objects.filter(slug=slug)
        .exclude(status__in=[Campaign.Status.DRAFT, Campaign.Status.ARCHIVED])
        .first()
    )
    if campaign is None:
        raise ApplicationError("campaign_not_found", f"No campaign “{slug}”.", status=404)
    return campaign


def _require_live(campaign: Campaign) -> None:
    if campaign.status != Campaign.Status.LIVE:
        raise ConflictError(
            "campaign_not_live", f"“{campaign}” is {campaign.get_status_display().lower()}, not live."
        )


def share_link_get_or_create(*, campaign: Campaign, sharer: Participant, channel_code: str = "") -> tuple:
    """The sharer's link for this campaign and channel; the same one every time.

    The sharer must have joined first. Joining here silently would make a participant
    who arrived through a friend's link a root, and lose the friend's invitation.
    Safe under concurrent calls: the unique constraint decides, the loser reads.
    """
    _require_live(campaign)
    channel = None
    if channel_code:
        channel = Channel.objects.filter(campaign=campaign, code=channel_code).first()
        if channel is None:
            raise ApplicationError(
                "channel_unknown",
                f"“{campaign}” has no channel “{channel_code}”.",
                fields={"channel": ["Unknown channel code."]},
            )
    if not Referral.objects.filter(campaign=campaign, invitee=sharer).exists():
        raise ConflictError(
            "join_first", f"Join “{campaign}” before sharing it: POST /api/v1/campaigns/{campaign.slug}/join."
        )
    existing = ShareLink.objects.filter(campaign=campaign, sharer=sharer, channel=channel).first()
    if existing:
        return existing, False
    try:
        with transaction.atomic():
            link = ShareLink.objects.create(
                code=secrets.token_urlsafe(CODE_BYTES), campaign=campaign, sharer=sharer, channel=channel
            )
        return link, True
    except IntegrityError:
        return ShareLink.objects.get(campaign=campaign, sharer=sharer, channel=channel), False


def share_link_open(
    *,
    code: str,
    opener: Participant,
    client_event_id: str,
    ip: str | None = None,
    device_id: str = "",
    user_agent: str = "",
    now=None,
) -> tuple[ShareOpen, bool]:
    """Record that `opener` opened the link. Idempotent by client_event_id.
    `now` (default: the clock) is when it was opened; the campaign simulator backdates it."""
    link = ShareLink.objects.select_related("campaign").filter(code=code).first()
    if link is None:
        raise ApplicationError("share_link_not_found", "No share link has this code.", status=404)
    now = now or timezone.now()
    with transaction.atomic():
        opened, created = ShareOpen.objects.get_or_create(
            opener=opener,
            client_event_id=client_event_id,
            defaults={
                "link": link,
                "opened_at": now,
                "ip": ip,
                "device_id": device_id[:64],
                "user_agent": user_agent[:300],
            },
        )
        if created:
            event_record(
                participant_id=opener.pk,
                campaign_id=link.campaign_id,
                name="open",
                client_event_id=f"#open:{client_event_id}",
                occurred_at=now,
                inviter_id=link.sharer_id,
                channel_id=link.channel_id,
                properties={"code": code},
                now=now,
            )
    return opened, created


def self_referral_reason(link: ShareLink, participant: Participant, device_id: str) -> str:
    """Why joining through this link would be the sharer referring themselves (the same
    participant, WeChat account or device), or "" when it would not. Mechanics use it to
    refuse a leader joining their own group or a starter helping their own price cut."""
    sharer = link.sharer
    if sharer.pk == participant.pk:
        return "the same participant"
    if sharer.unionid and sharer.unionid == participant.unionid:
        return "the same WeChat account (unionid)"
    sharer_devices = {sharer.first_device_id} - {""}
    if sharer_devices & ({participant.first_device_id, device_id} - {""}):
        return "the same device"
    return ""


def _attribution(*, campaign: Campaign, participant: Participant, code: str, device_id: str, now) -> dict:
    """Decide who invited this participant. Returns the fields of the Referral row."""
    if not code:
        return {"attribution": {"rule": "no_code"}}
    link = ShareLink.objects.select_related("sharer").filter(code=code).first()
    if link is None or link.campaign_id != campaign.pk:
        return {"attribution": {"rule": "unknown_code", "code": code}}
    why_self = self_referral_reason(link, participant, device_id)
    if why_self:
        return {"attribution": {"rule": "self_referral", "code": code, "reason": why_self}}
    last_open = ShareOpen.objects.filter(link=link, opener=participant).order_by("-opened_at").first()
    if last_open is not None and last_open.opened_at < now - campaign.attribution_window:
        return {
            "attribution": {
                "rule": "open_expired",
                "code": code,
                "open_id": last_open.pk,
                "opened_at": last_open.opened_at.isoformat(),
                "window_hours": campaign.attribution_window_hours,
            }
        }
    inviter_row = Referral.objects.filter(campaign=campaign, invitee_id=link.sharer_id).first()
    rule = {"rule": "open_within_window", "open_id": last_open.pk} if last_open else {"rule": "code_at_join"}
    return {
        "inviter_id": link.sharer_id,
        "root_id": (inviter_row.root_id if inviter_row and inviter_row.root_id else link.sharer_id),
        "depth": (inviter_row.depth if inviter_row else 0) + 1,
        "link": link,
        "channel_id": link.channel_id,
        "open": last_open,
        "attribution": {**rule, "code": code},
    }


def campaign_join(
    *,
    campaign: Campaign,
    participant: Participant,
    code: str = "",
    ip: str | None = None,
    device_id: str = "",
    now=None,
    channel_code: str = "",
) -> dict:
    """Join `participant` to a live campaign, attributed to the sharer of `code` if it may be.

    Idempotent: the first join decides the inviter (held by the unique constraint
    referral_one_inviter_per_invitee); a later join, with any code, returns that first
    row and says so. Concurrent first joins: one insert wins, the other reads it.
    `channel_code` is where a participant without an inviter came from (a poster's QR code,
    a KOL post); a share link's own channel always wins. `now` (default: the clock) is the
    join time; the campaign simulator backdates it.
    """
    _require_live(campaign)
    now = now or timezone.now()
    existing = Referral.objects.filter(campaign=campaign, invitee=participant).first()
    if existing is not None:
        return _joined(existing, created=False, code=code)
    fields = _attribution(campaign=campaign, participant=participant, code=code, device_id=device_id, now=now)
    if channel_code and "inviter_id" not in fields:
        channel = Channel.objects.filter(campaign=campaign, code=channel_code).first()
        if channel is None:
            raise ApplicationError(
                "channel_unknown",
                f"“{campaign}” has no channel “{channel_code}”.",
                fields={"channel": ["Unknown channel code."]},
            )
        fields["channel_id"] = channel.pk
    valid_now = campaign.valid_event_name == "join"
    try:
        with transaction.atomic():
            referral = Referral.objects.create(
                campaign=campaign,
                invitee=participant,
                joined_at=now,
                joined_ip=ip,
                joined_device_id=device_id[:64],
                status=Referral.Status.VALID if valid_now else Referral.Status.JOINED,
                valid_at=now if valid_now else None,
                valid_event="join" if valid_now else "",
                root_id=fields.pop("root_id", participant.pk),
                **fields,
            )
            event_record(
                participant_id=participant.pk,
                campaign_id=campaign.pk,
                name="join",
                client_event_id=f"#join:{campaign.pk}",
                occurred_at=now,
                inviter_id=referral.inviter_id,
                channel_id=referral.channel_id,
                properties={"rule": referral.attribution.get("rule")},
                now=now,
            )
    except IntegrityError:
        return _joined(Referral.objects.get(campaign=campaign, invitee=participant), created=False, code=code)
    _after_commit_rewards(referral.pk, "invitee_joined")
    if valid_now:
        _after_commit_rewards(referral.pk, "invitee_valid")
    return _joined(referral, created=True, code=code)


def _after_commit_rewards(referral_id: int, trigger: str) -> None:
    from referrals.tasks import rewards_for_referral_task

    transaction.on_commit(lambda: rewards_for_referral_task.delay(referral_id, trigger))


def _joined(referral: Referral, *, created: bool, code: str) -> dict:
    note = ""
    if not created:
        first_code = referral.attribution.get("code", "")
        note = "Already joined; the first attribution is kept."
        if code and code != first_code:
            note = "Already joined through another link; the first attribution is kept."
    return {"referral": referral, "created": created, "note": note}


def referral_mark_valid(
    *, campaign: Campaign, participant_id: int, event_name: str, occurred_at, made_valid: list | None = None
) -> bool:
    """Mark the participant valid in the campaign. One conditional UPDATE: idempotent,
    and never re-dated. Respects the campaign's "within N hours of joining" limit.

    The rewards are granted after commit: one task per referral, or, when the caller
    passes a `made_valid` list, the ids are added to it and the caller grants them in one
    batch (server-event batches do)."""
    if not campaign.starts_at <= occurred_at < campaign.ends_at:
        return False  # qualifying after the campaign ended (or before it began) does not count
    rows = Referral.objects.filter(
        campaign=campaign, invitee_id=participant_id, valid_at__isnull=True, joined_at__lte=occurred_at
    )
    if campaign.valid_within_hours:
        from datetime import timedelta

        rows = rows.filter(joined_at__gte=occurred_at - timedelta(hours=campaign.valid_within_hours))
    ids = list(rows.values_list("pk", flat=True))
    changed = Referral.objects.filter(pk__in=ids, valid_at__isnull=True).update(
        status=Referral.Status.VALID, valid_at=occurred_at, valid_event=event_name
    )
    for referral_id in ids[:changed]:
        if made_valid is not None:
            made_valid.append(referral_id)
        else:
            _after_commit_rewards(referral_id, "invitee_valid")
    return bool(changed)
