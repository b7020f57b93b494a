"""Reads of price cuts: a task as the mini program shows it, a participant's tasks."""

from django.db.models import QuerySet

from referrals.models import Participant

from .models import Offer, Task, yuan
from .schedule import RANDOM, cut_for


def offers_of_campaign(campaign) -> QuerySet[Offer]:
    return campaign.cut_offers.filter(is_active=True).order_by("id")


def next_cut(task: Task) -> str | None:
    """What the next helper cuts, where the schedule is deterministic (random: see the bounds)."""
    if task.status != Task.Status.OPEN or task.schedule == RANDOM:
        return None
    return yuan(
        cut_for(
            schedule=task.schedule,
            total=task.start_price_fen - task.floor_price_fen,
            helpers=task.helpers_needed,
            k=task.helper_count + 1,
            remaining=task.remaining_fen,
        )
    )


def task_view(task: Task, *, viewer_id: int | None) -> dict:
    """Everything a task's page shows: the exact amount left and the friends still needed."""
    helps = list(task.helps.select_related("helper").order_by("seq"))
    mine = next((h for h in helps if h.helper_id == viewer_id), None)
    random_bounds = task.schedule == RANDOM
    return {
        "code": task.code,
        "campaign": task.campaign.slug,
        "offer": task.offer,
        "status": task.status,
        "starter": task.starter.display_name,
        "is_starter": task.starter_id == viewer_id,
        "start_price": yuan(task.start_price_fen),
        "floor_price": yuan(task.floor_price_fen),
        "price": yuan(task.price_fen),
        "remaining": yuan(task.remaining_fen),
        "remaining_fen": task.remaining_fen,
        "helpers_needed": task.helpers_needed,
        "helper_count": task.helper_count,
        "helpers_left": task.helpers_left,
        "schedule": task.schedule,
        "cut_min": yuan(task.min_cut_fen) if random_bounds else None,
        "cut_max": yuan(task.max_cut_fen) if random_bounds else None,
        "next_cut": next_cut(task),
        "started_at": task.started_at,
        "expires_at": task.expires_at,
        "completed_at": task.completed_at,
        "redeemed": task.redeemed_at is not None,
        "share_code": task.share_code,
        "path": f"/pages/price-cut/index?c={task.campaign.slug}&t={task.code}&s={task.share_code}",
        "helps": [
            {"seq": h.seq, "name": h.helper.display_name, "cut": yuan(h.amount_fen), "at": h.helped_at}
            for h in helps
        ],
        "my_cut": yuan(mine.amount_fen) if mine else None,
    }


def tasks_of(*, participant: Participant, campaign_slug: str | None, status: str | None) -> QuerySet[Task]:
    """The price cuts a participant started, newest first."""
    rows = Task.objects.filter(starter=participant).select_related("offer", "campaign")
    if campaign_slug:
        rows = rows.filter(campaign__slug=campaign_slug)
    if status:
        rows = rows.filter(status=status)
    return rows.order_by("-started_at", "-id")
