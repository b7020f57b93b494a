from celery import shared_task

from . import services


@shared_task(name="campaigns.campaigns_sync_schedule")
def campaigns_sync_schedule_task() -> dict:
    """Beat, every 30 s: scheduled campaigns go live at their start, live ones end at their end."""
    return services.campaigns_sync_schedule()
