from celery import shared_task

from referrals.services.events import event_receipts_prune
from referrals.services.partitions import event_partitions_ensure


@shared_task(name="referrals.event_partitions_ensure")
def event_partitions_ensure_task() -> list[str]:
    """Beat, hourly: keep two weeks of daily event partitions ahead."""
    return event_partitions_ensure()


@shared_task(name="referrals.event_receipts_prune")
def event_receipts_prune_task() -> int:
    """Beat, hourly: forget receipts of events too old to be sent again."""
    return event_receipts_prune()


@shared_task(name="referrals.rewards_for_referral", acks_late=True)
def rewards_for_referral_task(referral_id: int, trigger: str) -> list[int]:
    """After a join or a valid mark commits: grant what the rules give. Idempotent, so a
    redelivery (acks_late) grants nothing twice."""
    from referrals.services.rewards import rewards_for_referral

    return [r.pk for r in rewards_for_referral(referral_id=referral_id, trigger=trigger)]
