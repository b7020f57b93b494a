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


# Grant tasks are acked late (a worker that dies whole gives them back) and idempotent, so a
# redelivery grants nothing twice. A task whose pool process dies is not redelivered (it
# could be the cause: no poison loop); the rewards sweeper re-derives what it did not grant.
GRANT_TASK = {"acks_late": True, "reject_on_worker_lost": False}


def _score_inviters(referral_ids: list[int]) -> None:
    from referrals.services.fraud import fraud_score_inviters

    fraud_score_inviters(referral_ids=referral_ids)


@shared_task(name="referrals.rewards_for_referral", **GRANT_TASK)
def rewards_for_referral_task(referral_id: int, trigger: str) -> list[int]:
    """After a join or a valid mark commits: grant what the rules give, then score the inviter."""
    from referrals.services.reward_triggers import rewards_for_referral

    granted = [r.pk for r in rewards_for_referral(referral_id=referral_id, trigger=trigger)]
    _score_inviters([referral_id])
    return granted


@shared_task(name="referrals.rewards_for_referrals", **GRANT_TASK)
def rewards_for_referrals_task(referral_ids: list[int], trigger: str) -> int:
    """A server-event batch's new valid invitees (up to 500): granted in one batch, then their
    inviters scored."""
    from referrals.services.reward_batch import rewards_for_referrals

    granted = rewards_for_referrals(referral_ids=referral_ids, trigger=trigger)
    _score_inviters(referral_ids)
    return granted


@shared_task(name="referrals.order_event", **GRANT_TASK)
def order_event_task(
    name: str, campaign_id: int, participant_id: int, order_id: str, amount: str = ""
) -> dict:
    """order_paid → commissions; order_refunded → void or claw back. Both idempotent."""
    from decimal import Decimal

    from referrals.services.reward_triggers import rewards_for_order, rewards_refund_order

    if name == "order_paid":
        granted = rewards_for_order(
            campaign_id=campaign_id, buyer_id=participant_id, order_id=order_id, amount=Decimal(amount)
        )
        return {"granted": [r.pk for r in granted]}
    return rewards_refund_order(campaign_id=campaign_id, order_id=order_id)


@shared_task(name="referrals.rewards_for_act", **GRANT_TASK)
def rewards_for_act_task(
    campaign_id: int, participant_id: int, trigger: str, source: str, event_name: str = ""
) -> list[int]:
    """A server event named by an "another server event" rule, a completed group or price cut."""
    from referrals.services.reward_triggers import rewards_for_act

    granted = rewards_for_act(
        campaign_id=campaign_id,
        participant_id=participant_id,
        trigger=trigger,
        source=source,
        event_name=event_name,
    )
    return [r.pk for r in granted]


@shared_task(name="referrals.rewards_sweep")
def rewards_sweep_task() -> dict:
    """Beat, every 10 minutes: re-send grants that a lost task never made."""
    from referrals.services.reward_triggers import rewards_sweep

    return rewards_sweep()


@shared_task(name="referrals.rewards_expire")
def rewards_expire_task() -> int:
    """Beat, hourly: void rewards whose release event never came."""
    from referrals.services.reward_triggers import rewards_expire

    return rewards_expire()


@shared_task(name="referrals.fraud_score")
def fraud_score_task() -> dict:
    """Beat, every minute: score the sharers of every live campaign (the signals that need a
    window: velocity, yield) and hold what a new or worse case covers."""
    from referrals.services.fraud import fraud_score_live_campaigns

    return fraud_score_live_campaigns()


@shared_task(name="referrals.fraud_rings")
def fraud_rings_task() -> int:
    """Beat, every 10 minutes: cases for rings holding a confirmed fraudster or scoring high."""
    from referrals.services.fraud import fraud_rings_pass

    return fraud_rings_pass()


@shared_task(name="referrals.payout_send", acks_late=True, reject_on_worker_lost=True)
def payout_send_task(payout_id: int) -> str:
    """Drive one payout. acks_late + reject_on_worker_lost: a killed worker's message is
    delivered again; the service counts deliveries and parks a payout after three."""
    from referrals.services.payouts import payout_send

    return payout_send(payout_id=payout_id).status


@shared_task(name="referrals.payouts_sweep")
def payouts_sweep_task() -> int:
    from referrals.services.payouts import payouts_sweep

    return len(payouts_sweep())


@shared_task(name="referrals.payouts_reconcile")
def payouts_reconcile_task() -> int:
    """Beat, daily: compare yesterday's payouts with WeChat Pay's records."""
    from referrals.services.payouts import payouts_reconcile

    return len(payouts_reconcile().differences)
