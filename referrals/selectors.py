"""Reads for the mini program: my invitees, my progress, the reviewers' notes to me."""

from django.db.models import Count, Q, QuerySet

from campaigns.models import Campaign
from referrals.models import FraudCase, Participant, Referral


def referrals_of_inviter(*, inviter: Participant, campaign_slug: str | None = None) -> QuerySet[Referral]:
    rows = (
        Referral.objects.filter(inviter=inviter)
        .select_related("invitee", "campaign")
        .order_by("-joined_at", "-id")
    )
    if campaign_slug:
        rows = rows.filter(campaign__slug=campaign_slug)
    return rows


def progress_for(*, campaign: Campaign, participant: Participant) -> dict:
    me = Referral.objects.filter(campaign=campaign, invitee=participant).select_related("inviter").first()
    counts = Referral.objects.filter(campaign=campaign, inviter=participant).aggregate(
        invited=Count("id"), valid=Count("id", filter=Q(status=Referral.Status.VALID))
    )
    invited, valid = counts["invited"], counts["valid"]
    target = campaign.invite_target
    remaining = max(target - valid, 0) if target else None
    if not me:
        message = "Join the campaign to start inviting friends."
    elif target and remaining:
        message = f"{remaining} more friend{'s' if remaining != 1 else ''} to go"
    elif target:
        message = "Task complete: every friend you needed is in."
    else:
        message = f"{valid} valid friend{'s' if valid != 1 else ''} so far"
    return {
        "campaign": campaign.slug,
        "joined": me is not None,
        "joined_at": me.joined_at if me else None,
        "valid": bool(me and me.status == Referral.Status.VALID),
        "invited": invited,
        "valid_invitees": valid,
        "pending_invitees": invited - valid,
        "target": target,
        "remaining": remaining,
        "message": message,
        "tree": {
            "depth": me.depth if me else None,
            "is_root": bool(me and me.inviter_id is None),
            "inviter": me.inviter.display_name if me and me.inviter else None,
        },
        "valid_user_rule": campaign.valid_user_rule_text(),
    }


def review_notes_for(participant: Participant) -> dict[int, str]:
    """campaign id → the note to the participant of their latest decided fraud case that has one."""
    rows = (
        FraudCase.objects.filter(participant=participant, decided_at__isnull=False)
        .exclude(note_to_participant="")
        .order_by("campaign_id", "-decided_at")
        .distinct("campaign_id")
        .values_list("campaign_id", "note_to_participant")
    )
    return dict(rows)
