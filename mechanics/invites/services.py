"""Invite tasks: set the tiers (as milestone reward rules), and sweep who reached which tier.

The reward ledger grants a tier's reward when the N-th invited friend becomes valid
(referrals.services.reward_triggers, trigger "milestone"). The sweep here writes the
`invite_tier_reached` event and a TierReached row once per participant and tier, and asks
the same ledger again for anyone whose tier reward is missing (e.g. a tier added after they
passed it): the ledger is idempotent, so this never pays twice.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from campaigns.models import Campaign
from config.errors import ApplicationError
from referrals.models import Referral, Reward, RewardRule
from referrals.services.compliance import campaign_rules_text_refresh, rule_findings
from referrals.services.events import event_record
from referrals.services.reward_triggers import rewards_for_referral

from .compliance import tier_problems
from .models import InviteTask, TierReached
from .selectors import tiers_of

log = logging.getLogger(__name__)
R = RewardRule
# Friends who became valid in the last minute may still have their grant task running.
SETTLE = timedelta(minutes=1)
# Ended campaigns are swept for a day more: a late grant task may still be landing.
AFTER_END = timedelta(days=1)
LOOK_BACK = timedelta(hours=1)


@dataclass(frozen=True)
class TierSpec:
    count: int
    kind: str = R.Kind.CASH
    amount: Decimal | None = None
    points: int | None = None
    name: str = ""

    def rule_name(self) -> str:
        return (self.name or f"Invite task: {self.count} valid friends")[:80]


def _task(campaign: Campaign) -> InviteTask:
    if campaign.kind != Campaign.Kind.INVITE_TASK:
        raise ApplicationError(
            "not_an_invite_task", f"“{campaign}” is not an invite-task campaign.", status=404
        )
    task = InviteTask.objects.filter(campaign=campaign).first()
    if task is None:
        raise ApplicationError("invite_task_missing", f"“{campaign}” has no invite task yet.", status=404)
    return task


@transaction.atomic
def invite_tiers_set(*, campaign_id: int, tiers: list[TierSpec]) -> list[RewardRule]:
    """Make the campaign's cash and points tiers exactly these: one active milestone rule per
    tier (created, or updated in place), other milestone rules switched off (never deleted:
    granted rewards point at them), coupon tiers left as they are. Refuses, changing
    nothing, what the compliance check would refuse. Sets the campaign's invite target to
    the top tier. Idempotent. Locks the campaign."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
    task = _task(campaign)
    tiers = sorted(tiers, key=lambda t: t.count)
    existing = {
        rule.milestone: rule
        for rule in RewardRule.objects.filter(
            campaign=campaign, trigger=R.Trigger.MILESTONE, beneficiary=R.Beneficiary.INVITER, level=1
        )
        .exclude(kind=R.Kind.COUPON)
        .order_by("is_active", "id")  # the active rule of a count wins over switched-off ones
    }
    rules = []
    for spec in tiers:
        rule = existing.get(spec.count) or RewardRule(
            campaign=campaign, trigger=R.Trigger.MILESTONE, milestone=spec.count, hold_hours=72
        )
        rule.name, rule.kind, rule.is_active = spec.rule_name(), spec.kind, True
        rule.beneficiary, rule.level, rule.amount_kind = R.Beneficiary.INVITER, 1, R.AmountKind.FIXED
        rule.amount = spec.amount if spec.kind != R.Kind.POINTS else None
        rule.points = spec.points if spec.kind == R.Kind.POINTS else None
        rule.cap_per_participant = 1  # a tier is unlocked once
        rules.append(rule)
    # Coupon tiers need a code bank, so they are edited with the campaign's reward rules and
    # kept here as they are; they still count when checking the whole ladder.
    coupons = list(
        RewardRule.objects.filter(
            campaign=campaign, trigger=R.Trigger.MILESTONE, is_active=True, kind=R.Kind.COUPON
        )
    )
    ladder = sorted([*rules, *coupons], key=lambda r: r.milestone or 0)
    problems = tier_problems(campaign, ladder)
    for rule in rules:
        problems += [f"{rule.milestone} friends: {f}" for f in rule_findings(rule, campaign) if f.blocking]
    if problems:
        raise ApplicationError("invite_tiers_refused", " ".join(problems), fields={"tiers": problems})
    for rule in rules:
        rule.save()
    keep = {rule.pk for rule in [*rules, *coupons]}
    RewardRule.objects.filter(campaign=campaign, trigger=R.Trigger.MILESTONE, is_active=True).exclude(
        pk__in=keep
    ).update(is_active=False)
    Campaign.objects.filter(pk=campaign.pk).update(invite_target=ladder[-1].milestone)
    InviteTask.objects.filter(pk=task.pk).update(swept_until=None)  # look at everyone again
    campaign_rules_text_refresh(campaign_id=campaign.pk)
    return rules


def _sweep_start(task: InviteTask, end: datetime) -> datetime | None:
    """Where this sweep starts looking; None for everyone. A friend's valid_at is when they
    qualified, which the business backend may report late: each sweep looks back an hour
    past the last one, and the first sweep of each day (UTC) looks at everyone."""
    if task.swept_until is None or task.swept_until.date() != end.date():
        return None
    return task.swept_until - LOOK_BACK


def _reach(campaign: Campaign, tiers: list[RewardRule], inviter_id: int, valid: int, now: datetime) -> int:
    """Record the tiers `inviter_id` reached; ask the ledger for any tier reward missing.
    Returns how many tiers were recorded now."""
    reached = [t for t in tiers if t.milestone <= valid]
    if not reached:
        return 0
    times = list(
        Referral.objects.filter(campaign=campaign, inviter_id=inviter_id, status=Referral.Status.VALID)
        .order_by("valid_at", "id")
        .values_list("valid_at", flat=True)[: reached[-1].milestone]
    )
    recorded = 0
    with transaction.atomic():
        for tier in reached:
            at = times[tier.milestone - 1]
            _, created = TierReached.objects.get_or_create(
                campaign=campaign,
                participant_id=inviter_id,
                milestone=tier.milestone,
                defaults={"reached_at": at},
            )
            if created:
                recorded += 1
                event_record(
                    participant_id=inviter_id,
                    campaign_id=campaign.pk,
                    name="invite_tier_reached",
                    client_event_id=f"#invite:{campaign.pk}:tier:{tier.milestone}",
                    occurred_at=at,
                    properties={"tier": tier.milestone, "valid": valid, "top": tier is tiers[-1]},
                )
    granted = set(
        Reward.objects.filter(
            beneficiary_id=inviter_id, rule__in=reached, source__startswith="milestone:"
        ).values_list("rule_id", flat=True)
    )
    if any(t.pk not in granted for t in reached):
        latest = (
            Referral.objects.filter(campaign=campaign, inviter_id=inviter_id, status=Referral.Status.VALID)
            .order_by("-valid_at", "-id")
            .values_list("pk", flat=True)
            .first()
        )
        rewards_for_referral(referral_id=latest, trigger=R.Trigger.INVITEE_VALID, now=now)
    return recorded


def invite_progress_recheck(*, campaign_id: int, participant_id: int, now: datetime | None = None) -> int:
    """Bring one participant's tiers up to date (the admin's “re-check” action). Idempotent."""
    campaign = Campaign.objects.get(pk=campaign_id)
    _task(campaign)
    valid = Referral.objects.filter(
        campaign=campaign, inviter_id=participant_id, status=Referral.Status.VALID
    ).count()
    return _reach(campaign, tiers_of(campaign), participant_id, valid, now or timezone.now())


def invite_tiers_sweep(*, now: datetime | None = None, chunk: int = 500) -> dict[str, int]:
    """Beat, every minute: for each invite task whose campaign runs (or ended less than a day
    ago), the inviters of friends who became valid since the last sweep (everyone, after the
    tiers changed) get their tiers recorded. Idempotent: a crashed sweep is redone whole."""
    now = now or timezone.now()
    totals = {"tasks": 0, "inviters": 0, "tiers": 0}
    tasks = InviteTask.objects.select_related("campaign").filter(
        campaign__kind=Campaign.Kind.INVITE_TASK,
        campaign__status__in=[Campaign.Status.LIVE, Campaign.Status.PAUSED, Campaign.Status.ENDED],
        campaign__ends_at__gte=now - AFTER_END,
    )
    for task in tasks:
        campaign = task.campaign
        tiers = tiers_of(campaign)
        end = now - SETTLE
        start = _sweep_start(task, end)
        totals["tasks"] += 1
        if not tiers:
            continue
        moved = Referral.objects.filter(
            campaign=campaign, status=Referral.Status.VALID, inviter__isnull=False, valid_at__lt=end
        )
        if start is not None:
            moved = moved.filter(valid_at__gte=start)
        inviters = list(moved.values_list("inviter_id", flat=True).distinct().order_by("inviter_id"))
        lowest = tiers[0].milestone
        for i in range(0, len(inviters), chunk):
            counts = (
                Referral.objects.filter(
                    campaign=campaign, inviter_id__in=inviters[i : i + chunk], status=Referral.Status.VALID
                )
                .values("inviter_id")
                .annotate(n=Count("id"))
                .filter(n__gte=lowest)
            )
            for row in counts:
                totals["inviters"] += 1
                totals["tiers"] += _reach(campaign, tiers, row["inviter_id"], row["n"], now)
        InviteTask.objects.filter(pk=task.pk, swept_until=task.swept_until).update(swept_until=end)
    if totals["tiers"]:
        log.info("invite tiers sweep: %s", totals)
    return totals


# What an invite task is: copied into a clone. Not copied: `swept_until`, the sweep's
# progress through the old campaign's friends (the copy's first sweep looks at everyone).
TASK_FIELDS = ("title", "description")
TASK_FIELDS_NOT_COPIED = ("id", "campaign", "swept_until", "created_at", "updated_at")


def _ladder(campaign: Campaign) -> list[tuple]:
    return [(t.milestone, t.kind, t.amount_kind, t.amount, t.points) for t in tiers_of(campaign)]


def invite_task_clone(*, source: Campaign, clone: Campaign) -> None:
    """Copy `source`'s invite task into `clone` (campaigns.services.CLONE_HOOKS). The tiers
    are the milestone reward rules, which referrals' hook copied before this one runs (see
    apps.py); refused, undoing the clone, if the copy's tiers are not the original's. Who
    reached which tier is history: never copied."""
    task = InviteTask.objects.filter(campaign=source).first()
    if task is None:
        return
    InviteTask.objects.create(campaign=clone, **{field: getattr(task, field) for field in TASK_FIELDS})
    if _ladder(clone) != _ladder(source):
        raise ApplicationError(
            "invite_tiers_not_copied",
            f"The copy of “{source}” did not get its tiers (the milestone reward rules); nothing was copied.",
        )
    campaign_rules_text_refresh(campaign_id=clone.pk)
