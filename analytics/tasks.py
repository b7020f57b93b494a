from celery import shared_task

from .services import fold_live_campaigns


@shared_task(name="analytics.fold_live_campaigns", ignore_result=True)
def fold_live_campaigns_task() -> None:
    """Idempotent and single-writer per campaign: an overlapping run skips busy campaigns."""
    fold_live_campaigns()
