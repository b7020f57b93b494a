"""Reads of group buying: a group as the mini program shows it, a participant's groups."""

from django.db.models import QuerySet

from referrals.models import Participant

from .models import Deal, Group, Member, yuan


def deals_of_campaign(campaign) -> QuerySet[Deal]:
    return campaign.group_deals.filter(is_active=True).prefetch_related("tiers").order_by("id")


def next_tier(group: Group) -> dict | None:
    """The next price step the group can still reach, with how many more people it takes."""
    if not group.taking_members:
        return None
    for min_members, price in sorted(group.tiers):
        if min_members > group.member_count and min_members <= group.capacity:
            return {
                "min_members": min_members,
                "price": yuan(price),
                "members_to_go": min_members - group.member_count,
            }
    return None


def group_view(group: Group, *, viewer_id: int | None) -> dict:
    """Everything a group's page shows: terms, seats, exact time left and who is in it."""
    members = list(group.members.select_related("participant").order_by("seat"))
    mine = next((m for m in members if m.participant_id == viewer_id), None)
    return {
        "code": group.code,
        "campaign": group.campaign.slug,
        "deal": group.deal,
        "status": group.status,
        "leader": group.leader.display_name,
        "group_size": group.group_size,
        "capacity": group.capacity,
        "member_count": group.member_count,
        "virtual_count": group.virtual_count,
        "seats_left": group.seats_left,
        "taking_members": group.taking_members,
        "price": yuan(group.price_fen),
        "price_now": yuan(group.price_for(group.member_count)),
        "final_price": yuan(group.final_price_fen),
        "next_tier": next_tier(group),
        "opened_at": group.opened_at,
        "expires_at": group.expires_at,
        "completed_at": group.completed_at,
        "closed_at": group.closed_at,
        "share_code": group.share_code,
        "path": f"/pages/group/index?c={group.campaign.slug}&g={group.code}&s={group.share_code}",
        "members": [
            {"seat": m.seat, "name": m.participant.display_name, "is_leader": m.is_leader, "status": m.status}
            for m in members
        ],
        "me": None
        if mine is None
        else {
            "seat": mine.seat,
            "status": mine.status,
            "price": yuan(mine.price_fen),
            "order_id": mine.order_id,
        },
    }


def memberships_of(
    *, participant: Participant, campaign_slug: str | None, status: str | None
) -> QuerySet[Member]:
    """A participant's seats in groups, newest first (as leader or member)."""
    rows = Member.objects.filter(participant=participant).select_related(
        "group", "group__deal", "group__campaign", "group__leader"
    )
    if campaign_slug:
        rows = rows.filter(group__campaign__slug=campaign_slug)
    if status:
        rows = rows.filter(group__status=status)
    return rows.order_by("-joined_at", "-id")
