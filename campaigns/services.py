"""Every write to a campaign's lifecycle. Admin actions, the API and tasks call these.

Each service runs in one transaction and locks the campaign row (`select_for_update`)
so that two ops staff pressing buttons at once, or the scheduler racing an ops action,
serialise on the row instead of both reading the old status.
"""

import logging
from contextvars import ContextVar
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from config.errors import ApplicationError, ConflictError

from .models import Campaign, CampaignTransition, Channel, PosterTemplate

log = logging.getLogger(__name__)

S = Campaign.Status

# The status machine: draft → scheduled → live ⇄ paused → ended → archived. A scheduled
# campaign that fails its launch checks when its start comes goes back to draft.
ALLOWED = {
    S.DRAFT: {S.SCHEDULED, S.LIVE},
    S.SCHEDULED: {S.LIVE, S.ENDED, S.DRAFT},
    S.LIVE: {S.PAUSED, S.ENDED},
    S.PAUSED: {S.LIVE, S.ENDED},
    S.ENDED: {S.ARCHIVED},
    S.ARCHIVED: set(),
}


# Checks a campaign must pass before it is launched, registered by the apps above this
# one (referrals adds the reward-rule compliance check). Each returns refusal messages.
LAUNCH_CHECKS: list = []


def _launch_refusals(campaign: Campaign) -> None:
    refusals = [message for check in LAUNCH_CHECKS for message in check(campaign)]
    if refusals:
        raise ConflictError("campaign_not_compliant", "Cannot launch: " + " ".join(refusals))


def _lock(campaign_id: int) -> Campaign:
    return Campaign.objects.select_for_update().get(pk=campaign_id)


def _move(campaign: Campaign, to: str, *, by, note: str = "", now: datetime) -> Campaign:
    if to not in ALLOWED[campaign.status]:
        raise ConflictError(
            "campaign_illegal_transition",
            f"“{campaign}” is {campaign.get_status_display().lower()}; it cannot become "
            f"{S(to).label.lower()}.",
        )
    CampaignTransition.objects.create(
        campaign=campaign, from_status=campaign.status, to_status=to, by=by, note=note[:200]
    )
    campaign.status = to
    campaign.status_changed_at = now
    campaign.save(update_fields=["status", "status_changed_at", "updated_at"])
    log.info("campaign %s (%s) is now %s", campaign.pk, campaign.slug, to)
    return campaign


@transaction.atomic
def campaign_launch(*, campaign_id: int, by=None, now: datetime | None = None) -> Campaign:
    """Draft, scheduled or paused → live now, or → scheduled when it starts later.

    Idempotent: launching a live campaign, or a scheduled one before its start, returns it
    unchanged. Refused once the campaign's end has passed. Locks the campaign row.
    """
    now = now or timezone.now()
    campaign = _lock(campaign_id)
    if campaign.status == S.LIVE:
        return campaign
    if campaign.status in (S.DRAFT, S.SCHEDULED, S.PAUSED) and campaign.ends_at <= now:
        raise ConflictError(
            "campaign_window_passed",
            f"“{campaign}” ended at {timezone.localtime(campaign.ends_at, campaign.tz):%Y-%m-%d %H:%M %Z}; "
            "change its end time before launching it.",
        )
    if campaign.status == S.SCHEDULED and campaign.starts_at > now:
        return campaign
    _launch_refusals(campaign)
    if campaign.status == S.DRAFT and campaign.starts_at > now:
        return _move(campaign, S.SCHEDULED, by=by, note="launch before start: scheduled", now=now)
    return _move(campaign, S.LIVE, by=by, now=now)


@transaction.atomic
def campaign_pause(*, campaign_id: int, by=None, now: datetime | None = None) -> Campaign:
    """Live → paused. Idempotent: pausing a paused campaign returns it. Locks the row."""
    campaign = _lock(campaign_id)
    if campaign.status == S.PAUSED:
        return campaign
    return _move(campaign, S.PAUSED, by=by, now=now or timezone.now())


@transaction.atomic
def campaign_end(*, campaign_id: int, by=None, note: str = "", now: datetime | None = None) -> Campaign:
    """Scheduled, live or paused → ended. Idempotent on an ended campaign. Locks the row."""
    campaign = _lock(campaign_id)
    if campaign.status == S.ENDED:
        return campaign
    return _move(campaign, S.ENDED, by=by, note=note, now=now or timezone.now())


@transaction.atomic
def campaign_archive(*, campaign_id: int, by=None, now: datetime | None = None) -> Campaign:
    """Ended → archived. Idempotent on an archived campaign. Locks the row."""
    campaign = _lock(campaign_id)
    if campaign.status == S.ARCHIVED:
        return campaign
    return _move(campaign, S.ARCHIVED, by=by, now=now or timezone.now())


def campaigns_sync_schedule(*, now: datetime | None = None) -> dict[str, list[int]]:
    """Start scheduled campaigns whose time has come and end those whose time is up.

    Run by beat every 30 s. Idempotent: each campaign moves in its own transaction
    through the same services as ops actions, and a campaign already moved is skipped,
    so two overlapping runs (or a run racing an ops action) never move one twice. The
    launch checks run again at the start (rules may have changed since it was scheduled):
    a campaign that fails them goes back to draft, with the reasons in its history.
    """
    now = now or timezone.now()
    started, ended, refused = [], [], []
    due_to_start = Campaign.objects.filter(status=S.SCHEDULED, starts_at__lte=now, ends_at__gt=now)
    for campaign_id in due_to_start.values_list("pk", flat=True):
        with transaction.atomic():
            campaign = _lock(campaign_id)
            if campaign.status == S.SCHEDULED and campaign.starts_at <= now < campaign.ends_at:
                refusals = [message for check in LAUNCH_CHECKS for message in check(campaign)]
                if refusals:
                    log.warning("campaign %s not started: %s", campaign_id, " ".join(refusals))
                    _move(campaign, S.DRAFT, by=None, note=("not started: " + " ".join(refusals)), now=now)
                    refused.append(campaign_id)
                    continue
                _move(campaign, S.LIVE, by=None, note="started on schedule", now=now)
                started.append(campaign_id)
    due_to_end = Campaign.objects.filter(status__in=[S.SCHEDULED, S.LIVE, S.PAUSED], ends_at__lte=now)
    for campaign_id in due_to_end.values_list("pk", flat=True):
        with transaction.atomic():
            campaign = _lock(campaign_id)
            if campaign.status in (S.SCHEDULED, S.LIVE, S.PAUSED) and campaign.ends_at <= now:
                _move(campaign, S.ENDED, by=None, note="ended on schedule", now=now)
                ended.append(campaign_id)
    return {"started": started, "ended": ended, "refused": refused}


def _free_slug(base: str) -> str:
    base = slugify(base)[:70] or "campaign"
    taken = set(Campaign.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


# What a clone copies beyond the campaign's own parts, registered by the apps above this one
# (referrals copies the reward rules, each mechanic its configuration), as
# `copy(*, source: Campaign, clone: Campaign) -> None`. Called in order of registration
# (INSTALLED_APPS order: referrals before the mechanics), inside the clone's transaction:
# a hook that raises undoes the whole clone.
CLONE_HOOKS: list = []

# The files written by the clone being made in this context, deleted again if it fails.
_clone_files: ContextVar[list | None] = ContextVar("clone_files", default=None)


def clone_file_copy(*, original, copy) -> None:
    """Give `copy` (the file field of an unsaved model) its own copy of the file `original`,
    so that deleting the old campaign's file never breaks the new one. Within
    `campaign_clone`, the file is deleted again if the clone fails."""
    with original.open("rb") as fh:
        copy.save(original.name.rsplit("/", 1)[-1], ContentFile(fh.read()), save=False)
    written = _clone_files.get()
    if written is not None:
        written.append((copy.storage, copy.name))


def campaign_clone(
    *,
    campaign_id: int,
    by=None,
    name: str | None = None,
    slug: str | None = None,
    starts_at: datetime | None = None,
) -> Campaign:
    """Copy a campaign's configuration into a new draft: its settings, channels and poster
    templates here, then its reward rules and its mechanic's configuration (CLONE_HOOKS).

    Its history is not copied: status, transitions and channel spend start afresh, and the
    hooks copy no participants' doings (rewards, groups, cards...) either.
    With `starts_at`, the new campaign keeps the old one's duration from that start.
    One transaction: if any part fails, there is no draft, and the files copied so far are
    deleted again. Not idempotent by design: each call makes a new draft (ops can delete a
    stray one).
    """
    written: list = []
    token = _clone_files.set(written)
    try:
        return _campaign_clone(campaign_id=campaign_id, by=by, name=name, slug=slug, starts_at=starts_at)
    except BaseException:
        for storage, file_name in written:
            try:
                storage.delete(file_name)
            except OSError:
                log.warning("clone of campaign %s failed; could not delete %s", campaign_id, file_name)
        raise
    finally:
        _clone_files.reset(token)


@transaction.atomic
def _campaign_clone(
    *, campaign_id: int, by, name: str | None, slug: str | None, starts_at: datetime | None
) -> Campaign:
    source = Campaign.objects.get(pk=campaign_id)
    duration: timedelta = source.ends_at - source.starts_at
    clone = Campaign.objects.get(pk=campaign_id)
    clone.pk = None
    clone.id = None
    clone._state.adding = True
    clone.name = name or f"{source.name} (copy)"
    clone.slug = slug or _free_slug(f"{source.slug}-copy")
    clone.status = S.DRAFT
    clone.status_changed_at = None
    clone.budget_reserved = clone.budget_spent = 0  # money belongs to the old campaign's ledger
    clone.cloned_from = source
    clone.owner = by if by is not None else source.owner
    if starts_at is not None:
        clone.starts_at = starts_at
        clone.ends_at = starts_at + duration
    try:
        clone.full_clean(exclude=["owner"])
    except ValidationError as exc:
        raise ApplicationError(
            "campaign_clone_invalid", "The copy cannot be saved as given.", fields=exc.message_dict
        ) from exc
    clone.save()

    Channel.objects.bulk_create(
        Channel(campaign=clone, code=channel.code, name=channel.name, kind=channel.kind)
        for channel in source.channels.all()
    )
    for template in source.templates.all():
        copy = PosterTemplate(
            campaign=clone,
            name=template.name,
            avatar_x=template.avatar_x,
            avatar_y=template.avatar_y,
            avatar_size=template.avatar_size,
            nickname_x=template.nickname_x,
            nickname_y=template.nickname_y,
            nickname_size=template.nickname_size,
            nickname_color=template.nickname_color,
            qr_x=template.qr_x,
            qr_y=template.qr_y,
            qr_size=template.qr_size,
            is_default=template.is_default,
        )
        clone_file_copy(original=template.background, copy=copy.background)
        copy.save()
    for hook in CLONE_HOOKS:
        hook(source=source, clone=clone)
    return clone
