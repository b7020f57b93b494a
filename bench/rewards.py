"""Rewards granted per second from valid invitees (rules and caps evaluated), against a
bare INSERT of the same reward rows; and the payout drain rate against the fake WeChat
Pay held to 50 requests/s.

The grant path measured is the one server-event batches take in production: the valid
invitees of a batch go to `rewards_for_referrals` in chunks of up to 500 (one Celery task
per chunk; the task's own overhead is not measured).

    .venv/bin/python -m bench.rewards [--invitees 20000] [--payouts 600]
"""

import argparse
import multiprocessing
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bench.harness import Stack, emit, say

PROCESSES = 2


def make_world(invitees: int):
    from campaigns.models import Campaign
    from referrals.models import Participant, Referral, RewardRule
    from referrals.services import attribution

    now = datetime.now(UTC)
    campaign = Campaign.objects.create(
        name="Rewards",
        slug="rewards",
        status=Campaign.Status.LIVE,
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=9),
        goal_target=1_000_000,
        budget_total=Decimal("1000000.00"),
        valid_event_name="first_order",
    )
    RewardRule.objects.create(
        campaign=campaign,
        name="¥1 a friend",
        trigger="invitee_valid",
        kind="cash",
        amount_kind="fixed",
        amount=Decimal("1.00"),
        cap_per_participant=100_000,
        cap_per_participant_daily=100_000,
    )
    RewardRule.objects.create(
        campaign=campaign,
        name="Welcome points",
        trigger="invitee_valid",
        beneficiary="invitee",
        kind="points",
        points=10,
    )
    sharers = Participant.objects.bulk_create(
        Participant(app_id="wxbench", openid=f"o_sharer_{i}") for i in range(50)
    )
    for s in sharers:
        attribution.campaign_join(campaign=campaign, participant=s)
    people = Participant.objects.bulk_create(
        Participant(app_id="wxbench", openid=f"o_friend_{i}") for i in range(invitees)
    )
    codes = [attribution.share_link_get_or_create(campaign=campaign, sharer=s)[0].code for s in sharers]
    for i, p in enumerate(people):
        attribution.campaign_join(campaign=campaign, participant=p, code=codes[i % len(codes)])
    ids = list(
        Referral.objects.filter(campaign=campaign, inviter__isnull=False)
        .values_list("pk", flat=True)
        .order_by("pk")
    )
    Referral.objects.filter(pk__in=ids).update(status="valid", valid_at=now)  # their first orders
    return campaign, ids


def _grant_slice(referral_ids: list[int]) -> None:
    import django

    django.setup()
    from referrals.services.reward_batch import rewards_for_referrals
    from referrals.services.server_events import GRANT_CHUNK

    for i in range(0, len(referral_ids), GRANT_CHUNK):
        rewards_for_referrals(referral_ids=referral_ids[i : i + GRANT_CHUNK], trigger="invitee_valid")


def _bare_slice(rows: list[tuple]) -> None:
    import django

    django.setup()
    from django.db import connection

    with connection.cursor() as cursor:
        for rule_id, campaign_id, beneficiary_id, source in rows:
            cursor.execute(
                "INSERT INTO bench_plain_reward (rule_id, campaign_id, beneficiary_id, source, amount) "
                "VALUES (%s, %s, %s, %s, 1.00)",
                [rule_id, campaign_id, beneficiary_id, source],
            )


def in_processes(target, items: list, contiguous: int = 0) -> float:
    from django.db import connections

    connections.close_all()
    if contiguous:
        chunks = [
            items[i * contiguous : (i + 1) * contiguous if i < PROCESSES - 1 else None]
            for i in range(PROCESSES)
        ]
    else:
        chunks = [items[i::PROCESSES] for i in range(PROCESSES)]
    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    procs = [context.Process(target=target, args=(chunk,)) for chunk in chunks]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0, "a benchmark process failed"
    return time.perf_counter() - started


def drain(count: int) -> tuple[float, int, int]:
    """Payouts/s through payout_send (4 threads, one process) against the fake held to 50/s."""
    import threading

    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import connection
    from django.utils import timezone

    from fakes.wechatpay import start_in_thread
    from referrals.models import Payout, Reward
    from referrals.services import payouts

    fake = start_in_thread(port=0, api_key=settings.WECHATPAY_API_KEY)
    fake.rate_limit = 50  # the server refuses anything above the limit: any 429 is counted
    settings.WECHATPAY_API_BASE = fake.base_url
    ids = list(Reward.objects.filter(kind="cash").values_list("pk", flat=True)[:count])
    Reward.objects.filter(pk__in=ids).update(status=Reward.Status.APPROVED, payable_at=timezone.now())
    maker, checker = User.objects.create(username="maker"), User.objects.create(username="checker")
    batch = payouts.payout_batch_create(by=maker, name="drain", reward_ids=ids)
    from referrals.models import PayoutBatch

    PayoutBatch.objects.filter(pk=batch.pk).update(status="approved", approved_by=checker)
    queue = list(batch.payouts.values_list("pk", flat=True))
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if not queue:
                    break
                payout_id = queue.pop()
            payouts.payout_send(payout_id=payout_id)
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    paid = Payout.objects.filter(batch=batch, status="succeeded").count()
    limited = fake.frequency_limited
    fake.shutdown()
    return paid / elapsed, paid, limited


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invitees", type=int, default=20000)
    parser.add_argument("--payouts", type=int, default=600)
    args = parser.parse_args()
    with Stack(serve=False):
        from django.db import connection

        from referrals.models import Reward

        campaign, referral_ids = make_world(args.invitees)
        say(f"{len(referral_ids)} valid invitees, 2 rules each, {PROCESSES} processes…")
        # contiguous slices, as server-event batches arrive (not interleaved referral by referral)
        half = len(referral_ids) // PROCESSES
        ours_s = in_processes(_grant_slice, referral_ids, contiguous=half)
        granted = Reward.objects.filter(campaign=campaign).count()
        assert granted == 2 * len(referral_ids), f"granted {granted}"
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE bench_plain_reward (rule_id int, campaign_id int, beneficiary_id bigint, "
                "source varchar(80), amount numeric(12,2))"
            )
        rows = list(
            Reward.objects.filter(campaign=campaign).values_list(
                "rule_id", "campaign_id", "beneficiary_id", "source"
            )
        )
        bare_s = in_processes(_bare_slice, rows)
        emit(
            "rewards_grant",
            len(referral_ids) / ours_s,
            "valid invitees/s turned into rewards (2 rules each)",
            "bare INSERT of the same reward rows, per invitee",
            len(referral_ids) / bare_s,
            rewards_per_s=round(granted / ours_s, 1),
            processes=PROCESSES,
        )
        rate, paid, limited = drain(args.payouts)
        say(f"paid {paid} payouts, {limited} rate-limit answers")
        emit(
            "payout_drain",
            rate,
            "payouts/s",
            "the 50 requests/s limit",
            50.0,
            paid=paid,
            rate_limited=limited,
        )


if __name__ == "__main__":
    main()
