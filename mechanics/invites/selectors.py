"""Reads of invite tasks: the tiers, and a participant's progress (“2 more friends to go”).

Only *valid* friends count: friends who joined through the participant and then did the
campaign's valid-user action. Shares and bare joins never move the count.
"""

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from campaigns.models import Campaign
from referrals.models import Participant, Referral, Reward, RewardRule
from referrals.services.compliance import _amount_text

MILESTONE = RewardRule.Trigger.MILESTONE


def tiers_of(campaign: Campaign) -> list[RewardRule]:
    """The task's tiers: the campaign's active milestone rules for the inviter, by count."""
    return list(
        RewardRule.objects.filter(
            campaign=campaign,
            is_active=True,
            trigger=MILESTONE,
            beneficiary=RewardRule.Beneficiary.INVITER,
            milestone__isnull=False,
        ).order_by("milestone", "id")
    )


def reward_text(rule: RewardRule) -> str:
    return _amount_text(rule)


def friends_word(n: int) -> str:
    return f"{n} friend{'s' if n != 1 else ''}"


def progress_message(*, joined: bool, valid: int, next_count: int | None, total_tiers: int) -> str:
    if not joined:
        return "Join the campaign to start inviting friends."
    if not total_tiers:
        return "The task has no tiers yet."
    if next_count is None:
        return "Task complete: every tier is unlocked."
    to_go = next_count - valid
    return f"{to_go} more {'friend' if to_go == 1 else 'friends'} to go"


def progress_for(*, campaign: Campaign, participant: Participant) -> dict:
    """A participant's task: valid and pending friends, each tier with its state and the
    state of its reward, the next tier and how many valid friends it still needs."""
    joined = Referral.objects.filter(campaign=campaign, invitee=participant).exists()
    counts = Referral.objects.filter(campaign=campaign, inviter=participant).aggregate(
        invited=Count("id"), valid=Count("id", filter=Q(status=Referral.Status.VALID))
    )
    valid, invited = counts["valid"], counts["invited"]
    tiers = tiers_of(campaign)
    rewards = {
        (r.rule_id, r.source): r
        for r in Reward.objects.filter(
            beneficiary=participant,
            campaign=campaign,
            rule__in=tiers,
            source__startswith="milestone:",
            amount__gte=0,
        )
    }
    rows, next_tier = [], None
    for rule in tiers:
        unlocked = joined and valid >= rule.milestone
        reward = rewards.get((rule.pk, f"milestone:{rule.milestone}"))
        rows.append(
            {
                "count": rule.milestone,
                "name": rule.name,
                "reward": reward_text(rule),
                "unlocked": unlocked,
                "friends_to_go": max(rule.milestone - valid, 0),
                "reward_status": reward.status if reward else None,
                "reward_amount": reward.amount if reward and rule.kind != RewardRule.Kind.POINTS else None,
                "reward_points": reward.points if reward and rule.kind == RewardRule.Kind.POINTS else None,
                "reward_hold_reason": reward.hold_reason if reward else "",
            }
        )
        if next_tier is None and not unlocked:
            next_tier = rows[-1]
    next_count = next_tier["count"] if next_tier else None
    return {
        "campaign": campaign.slug,
        "joined": joined,
        "valid_friends": valid,
        "pending_friends": invited - valid,
        "tiers_unlocked": sum(1 for row in rows if row["unlocked"]),
        "tiers_total": len(rows),
        "completed": bool(rows) and joined and next_tier is None,
        "next_tier": next_tier,
        "friends_to_go": (next_count - valid) if next_count else 0,
        "message": progress_message(joined=joined, valid=valid, next_count=next_count, total_tiers=len(rows)),
        "valid_user_rule": campaign.valid_user_rule_text(),
        "tiers": rows,
    }


def friends_of(*, campaign: Campaign, participant: Participant) -> QuerySet[Referral]:
    """The participant's invited friends in the campaign, newest first."""
    return (
        Referral.objects.filter(campaign=campaign, inviter=participant)
        .select_related("invitee")
        .order_by("-joined_at", "-id")
    )


def progress_rows(queryset: QuerySet[Referral]) -> QuerySet[Referral]:
    """Membership rows annotated with the member's valid and pending friends and tiers reached
    (one subquery each, over the referral_by_inviter index)."""
    invited = Referral.objects.filter(campaign_id=OuterRef("campaign_id"), inviter_id=OuterRef("invitee_id"))

    def count_of(rows) -> Coalesce:
        return Coalesce(
            Subquery(rows.order_by().values("inviter_id").annotate(n=Count("id")).values("n")[:1]),
            Value(0),
            output_field=IntegerField(),
        )

    from .models import TierReached

    reached = TierReached.objects.filter(
        campaign_id=OuterRef("campaign_id"), participant_id=OuterRef("invitee_id")
    )
    return queryset.annotate(
        valid_friends=count_of(invited.filter(status=Referral.Status.VALID)),
        invited_friends=count_of(invited),
        tiers_reached=Coalesce(
            Subquery(reached.order_by().values("participant_id").annotate(n=Count("id")).values("n")[:1]),
            Value(0),
            output_field=IntegerField(),
        ),
    )
