from celery import shared_task


@shared_task(name="groupbuy.groups_close_due")
def groups_close_due_task() -> dict:
    """Beat, every minute: groups past their deadline expire (refunds signalled), are completed
    by virtual fill where the deal allows it, or settle their tiered price; then grants that a
    lost task never made are sent again."""
    from mechanics.groupbuy.services import group_rewards_sweep, groups_close_due

    counts = groups_close_due()
    counts["rewards_resent"] = group_rewards_sweep()
    return counts
