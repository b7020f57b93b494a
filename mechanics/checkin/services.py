"""Daily check-in: check in, fill a missed day with a make-up card, reach streak tiers.

Concurrency: every write for one participant first locks their membership row (Referral)
of the campaign, so a double tap, a retry and a make-up are decided one after the other;
the unique constraint checkin_once_per_day is the backstop. Rewards go through the reward
engine after commit (rewards_for_act, trigger "event"), idempotent by source.

A check-in never depends on sharing: nothing here looks at shares or invites.
"""

from datetime import date, datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.models import Campaign
from config.errors import ApplicationError, ConflictError
from referrals.models import Participant, Referral, RewardRule
from referrals.services.attribution import campaign_join
from referrals.services.compliance import campaign_rules_text_refresh
from referrals.services.events import event_record

from .models import Checkin, CheckinPlan, StreakTier

CHECKED_IN = "checked_in"  # the event a daily reward rule names


def tier_event(days: int) -> str:
    """The event a streak tier's reward rule names, e.g. checkin_streak_7."""
    return f"checkin_streak_{days}"


def plan_for(campaign: Campaign) -> CheckinPlan:
    if campaign.kind != Campaign.Kind.CHECKIN:
        raise ApplicationError(
            "not_a_checkin_campaign", f"“{campaign}” is not a check-in campaign.", status=404
        )
    plan = CheckinPlan.objects.filter(campaign=campaign).first()
    if plan is None:
        raise ApplicationError(
            "checkin_not_configured", f"“{campaign}” has no check-in plan yet.", status=404
        )
    if campaign.status != Campaign.Status.LIVE:
        raise ConflictError(
            "campaign_not_live", f"“{campaign}” is {campaign.get_status_display().lower()}, not live."
        )
    return plan


def local_day(campaign: Campaign, at: datetime) -> date:
    """The campaign's calendar day at `at` (its time zone, default Asia/Shanghai)."""
    return timezone.localtime(at, campaign.tz).date()


def _grant_after_commit(campaign_id: int, participant_id: int, source: str, event_name: str) -> None:
    from referrals.tasks import rewards_for_act_task

    args = (campaign_id, participant_id, RewardRule.Trigger.EVENT, source, event_name)
    transaction.on_commit(lambda: rewards_for_act_task.delay(*args))


def _reach_tiers(plan: CheckinPlan, row: Checkin, streak: int, now: datetime) -> list[int]:
    """Tiers up to `streak` not reached before: recorded, logged and rewarded once."""
    reached = []
    for days in plan.tiers:
        if days > streak:
            break
        _, created = StreakTier.objects.get_or_create(
            campaign_id=row.campaign_id,
            participant_id=row.participant_id,
            days=days,
            defaults={"checkin": row, "reached_at": now},
        )
        if not created:
            continue
        event_record(
            participant_id=row.participant_id,
            campaign_id=row.campaign_id,
            name=tier_event(days),
            client_event_id=f"#ci:{row.campaign_id}:streak{days}",
            occurred_at=now,
            properties={"day": row.day.isoformat(), "streak": streak},
        )
        _grant_after_commit(row.campaign_id, row.participant_id, f"checkin:streak{days}", tier_event(days))
        reached.append(days)
    return reached


def _lock_member(campaign: Campaign, participant: Participant) -> None:
    Referral.objects.select_for_update().get(campaign=campaign, invitee=participant)


def checkin_do(
    *, campaign: Campaign, participant: Participant, code: str = "", ip=None, device_id: str = "", now=None
) -> dict:
    """Check in for today (the campaign's local day). Joins the campaign first if needed,
    through `code` when the participant arrived by a friend's link. Idempotent: a second
    check-in the same day returns the first, with created False, and grants nothing.
    Locks the participant's membership row."""
    plan = plan_for(campaign)
    now = now or timezone.now()
    day = local_day(campaign, now)
    existing = Checkin.objects.filter(campaign=campaign, participant=participant, day=day).first()
    if existing is not None:
        return {"checkin": existing, "created": False, "tiers_reached": []}
    campaign_join(campaign=campaign, participant=participant, code=code, ip=ip, device_id=device_id, now=now)
    try:
        with transaction.atomic():
            _lock_member(campaign, participant)
            existing = Checkin.objects.filter(campaign=campaign, participant=participant, day=day).first()
            if existing is not None:  # a concurrent tap won while we waited for the lock
                return {"checkin": existing, "created": False, "tiers_reached": []}
            before = Checkin.objects.filter(
                campaign=campaign, participant=participant, day=day - timedelta(days=1)
            ).first()
            streak = before.streak + 1 if before else 1
            row = Checkin.objects.create(
                campaign=campaign, participant=participant, day=day, checked_at=now, streak=streak
            )
            event_record(
                participant_id=participant.pk,
                campaign_id=campaign.pk,
                name=CHECKED_IN,
                client_event_id=f"#ci:{campaign.pk}:{day.isoformat()}",
                occurred_at=now,
                properties={"day": day.isoformat(), "streak": streak},
            )
            _grant_after_commit(campaign.pk, participant.pk, f"checkin:{row.pk}", CHECKED_IN)
            reached = _reach_tiers(plan, row, streak, now)
    except IntegrityError:  # the unique constraint caught what the lock did not (never expected)
        row = Checkin.objects.get(campaign=campaign, participant=participant, day=day)
        return {"checkin": row, "created": False, "tiers_reached": []}
    return {"checkin": row, "created": True, "tiers_reached": reached}


def checkin_makeup(*, campaign: Campaign, participant: Participant, day: date, now=None) -> dict:
    """Fill a missed past day with one of the plan's make-up cards: the streak runs through
    it again. Earns streak tiers, not the daily check-in reward. Idempotent: a day already
    filled (or checked in) is returned with created False and uses no card. Locks the
    participant's membership row, so concurrent make-ups never use more cards than given."""
    plan = plan_for(campaign)
    now = now or timezone.now()
    today = local_day(campaign, now)
    if plan.makeup_cards == 0:
        raise ConflictError(
            "makeup_not_offered", "This campaign has no make-up cards: a missed day resets the streak."
        )
    if day >= today:
        raise ApplicationError(
            "makeup_day_invalid", "Only a past day can be made up.", fields={"day": ["Give a past day."]}
        )
    if day < local_day(campaign, campaign.starts_at):
        raise ApplicationError(
            "makeup_day_invalid", "That day is before the campaign began.", fields={"day": ["Too early."]}
        )
    if day < today - timedelta(days=plan.makeup_window_days):
        raise ConflictError(
            "makeup_too_late", f"A missed day can be made up within {plan.makeup_window_days} days only."
        )
    if not Referral.objects.filter(campaign=campaign, invitee=participant).exists():
        raise ConflictError("join_first", f"Check in to “{campaign}” first.")
    with transaction.atomic():
        _lock_member(campaign, participant)
        mine = Checkin.objects.filter(campaign=campaign, participant=participant)
        existing = mine.filter(day=day).first()
        if existing is not None:
            return {"checkin": existing, "created": False, "tiers_reached": []}
        if mine.filter(is_makeup=True).count() >= plan.makeup_cards:
            raise ConflictError("no_makeup_cards_left", f"All {plan.makeup_cards} make-up card(s) are used.")
        before = mine.filter(day=day - timedelta(days=1)).first()
        streak = before.streak + 1 if before else 1
        row = Checkin.objects.create(
            campaign=campaign, participant=participant, day=day, checked_at=now, streak=streak, is_makeup=True
        )
        # the days after it, in a row, now continue this streak
        last = row
        for later in mine.filter(day__gt=day).order_by("day"):
            if later.day != last.day + timedelta(days=1):
                break
            later.streak = last.streak + 1
            later.save(update_fields=["streak"])
            last = later
        event_record(
            participant_id=participant.pk,
            campaign_id=campaign.pk,
            name="checkin_makeup",
            client_event_id=f"#ci:{campaign.pk}:mk:{day.isoformat()}",
            occurred_at=now,
            properties={"day": day.isoformat(), "streak": last.streak},
        )
        reached = _reach_tiers(plan, last, last.streak, now)
    return {"checkin": row, "created": True, "tiers_reached": reached}


# What a plan is: copied into a clone. Check-ins and the streak tiers reached are history.
PLAN_FIELDS = ("streak_tiers", "makeup_cards", "makeup_window_days", "share_required")
PLAN_FIELDS_NOT_COPIED = ("id", "campaign", "created_at", "updated_at")


def checkin_plan_clone(*, source: Campaign, clone: Campaign) -> None:
    """Copy `source`'s check-in plan into `clone` (campaigns.services.CLONE_HOOKS), and
    rewrite the clone's public rules, which describe the plan. What each tier gives is a
    reward rule, copied by referrals' hook; check-ins and tiers reached are not copied."""
    plan = CheckinPlan.objects.filter(campaign=source).first()
    if plan is None:
        return
    fields = {field: getattr(plan, field) for field in PLAN_FIELDS}
    fields["streak_tiers"] = list(plan.streak_tiers)  # the copy's own list
    CheckinPlan.objects.create(campaign=clone, **fields)
    campaign_rules_text_refresh(campaign_id=clone.pk)
