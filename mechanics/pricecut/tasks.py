from celery import shared_task


@shared_task(name="pricecut.tasks_expire_due")
def cut_tasks_expire_due_task() -> dict:
    """Beat, every minute: open price cuts past their time expire; then grants that a lost
    task never made are sent again."""
    from mechanics.pricecut.services import cut_rewards_sweep, cut_tasks_expire_due

    return {"expired": cut_tasks_expire_due(), "rewards_resent": cut_rewards_sweep()}
