"""Payouts survive workers killed with SIGKILL at random moments: none lost, none doubled.

The workers run the real prefork pool. Each round first kills the pool's children while the
parent lives (acks_late + reject_on_worker_lost: the parent puts their messages back and forks
new children), then the whole process group, parent included (the sweeper re-drives what was
left unacknowledged)."""

import os
import random
import re
import signal
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User

from fakes.wechatpay import start_in_thread
from referrals.models import Payout, Reward, RewardRule
from referrals.services import payouts, rewards
from tests.integration.conftest import kill_worker, start_worker, stop_worker, worker_children

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
API_KEY = "killed-worker-test-key"
PAYOUTS = 24


def _running(log_text: str) -> int:
    """Tasks this worker has taken and not finished, from its log."""
    started = set(re.findall(r"Task \S+\[([\w-]+)\] received", log_text))
    finished = set(re.findall(r"Task \S+\[([\w-]+)\] (?:succeeded|raised|retry)", log_text))
    return len(started - finished)


def test_sigkilled_workers_lose_no_payout_and_pay_none_twice(
    make_campaign, make_participant, tmp_path, settings
):
    # given 24 approved ¥5 rewards in an approved batch, and a fake WeChat Pay that is slow
    # and, three times, pays and then times out
    fake = start_in_thread(port=0, api_key=API_KEY)
    settings.WECHATPAY_API_BASE, settings.WECHATPAY_API_KEY = fake.base_url, API_KEY
    campaign = make_campaign(status="live", budget_total=Decimal("1000.00"))
    rule = RewardRule.objects.create(
        campaign=campaign,
        name="¥5",
        trigger="invitee_valid",
        kind="cash",
        amount_kind="fixed",
        amount=Decimal("5.00"),
        hold_hours=0,  # payable at once
    )
    for i in range(PAYOUTS):
        reward, _ = rewards.reward_grant(rule=rule, beneficiary_id=make_participant().pk, source=f"s{i}")
        rewards.reward_move(reward_id=reward.pk, to=Reward.Status.APPROVED)
    maker, checker = User.objects.create(username="maker"), User.objects.create(username="checker")
    batch = payouts.payout_batch_create(by=maker, name="killed")
    fake.fail_next("timeout_after_paying", times=3, seconds=1.5)
    worker_env = {
        "WECHATPAY_API_BASE": fake.base_url,
        "WECHATPAY_API_KEY": API_KEY,
        "WECHATPAY_TIMEOUT_SECONDS": "0.5",
        "WECHATPAY_MAX_RPS": "8",
    }
    log = tmp_path / "worker.log"
    log.touch()
    rng = random.Random(20270203)
    try:
        # when the batch is approved (its payouts are sent to the broker) and workers are
        # killed mid-batch, three times, at random moments
        payouts.payout_batch_approve(batch_id=batch.pk, by=checker)
        children_killed = 0
        for _ in range(3):
            started_at = len(log.read_text())
            worker = start_worker(log, pool="prefork", concurrency=2, **worker_env)
            busy_at_least = rng.choice((1, 2))  # kill the pool mid-task: once 1 or 2 tasks run
            deadline = time.monotonic() + 5
            while _running(log.read_text()[started_at:]) < busy_at_least and time.monotonic() < deadline:
                time.sleep(0.02)
            for pid in worker_children(worker):
                os.kill(pid, signal.SIGKILL)
                children_killed += 1
            time.sleep(rng.uniform(0.3, 1.0))
            kill_worker(worker)
        killed_with = Payout.objects.exclude(status="succeeded").count()
        # then a healthy worker and the sweeper finish the job
        worker = start_worker(log, pool="prefork", concurrency=2, **worker_env)
        deadline = time.monotonic() + 90
        while Payout.objects.exclude(status__in=Payout.FINAL).exists() and time.monotonic() < deadline:
            payouts.payouts_sweep(older_than=timedelta(seconds=3))
            time.sleep(3)
        stop_worker(worker)
    finally:
        fake.shutdown()
    statuses = list(Payout.objects.values_list("status", flat=True))
    assert killed_with > 0, "the kills happened after everything was paid: the test proved nothing"
    assert children_killed >= 6, "no prefork pool to kill"
    assert "WorkerLostError" in log.read_text(), "no pool child died mid-task: reject_on_worker_lost untested"
    assert statuses.count("succeeded") == PAYOUTS, (statuses, log.read_text()[-3000:])  # none lost
    assert fake.transfers_created == PAYOUTS  # none doubled
    assert all(fake.paid_fen(p.openid) == 500 for p in Payout.objects.all())
    assert Reward.objects.filter(status="paid").count() == PAYOUTS
    campaign.refresh_from_db()
    assert (campaign.budget_reserved, campaign.budget_spent) == (Decimal("0.00"), Decimal("120.00"))
