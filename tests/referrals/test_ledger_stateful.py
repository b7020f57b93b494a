"""A Hypothesis state machine over grant / approve / reject / pay (with the provider
succeeding, failing, paying then timing out, or waiting for the user) / callbacks, and
the invariants of the ledger after every step."""

import contextlib
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from campaigns.models import Campaign
from config.errors import ApplicationError
from fakes.wechatpay import start_in_thread
from referrals.models import Participant, Reward, RewardRule
from referrals.services import payouts, rewards

API_KEY = "stateful-test-key"
BUDGET = Decimal("30.00")


@pytest.fixture
def pay(settings):
    fake = start_in_thread(port=0, api_key=API_KEY)
    settings.WECHATPAY_API_BASE, settings.WECHATPAY_API_KEY = fake.base_url, API_KEY
    settings.WECHATPAY_TIMEOUT_SECONDS, settings.WECHATPAY_MAX_RPS = 0.3, 1000
    yield fake
    fake.shutdown()


def test_the_ledger_keeps_its_invariants(db, pay):
    counter = iter(range(1, 10**9))

    class Ledger(RuleBasedStateMachine):
        @initialize()
        def campaign(self):
            n = next(counter)
            from django.utils import timezone

            now = timezone.now()
            self.campaign = Campaign.objects.create(
                name=f"L{n}",
                slug=f"ledger-{n}",
                status="live",
                starts_at=now,
                ends_at=now + timezone.timedelta(1),
                goal_target=1,
                budget_total=BUDGET,
            )
            self.rule = RewardRule.objects.create(
                campaign=self.campaign,
                name="r",
                trigger="invitee_valid",
                kind="cash",
                amount_kind="fixed",
                amount=Decimal("5.00"),
                hold_hours=0,
            )
            self.maker = User.objects.create(username=f"maker{n}")
            self.checker = User.objects.create(username=f"checker{n}")
            self.rewards: list[int] = []

        @rule(amount=st.sampled_from(["0.10", "5.00", "12.34"]))
        def grant(self, amount):
            RewardRule.objects.filter(pk=self.rule.pk).update(amount=Decimal(amount))
            self.rule.refresh_from_db()
            person = Participant.objects.create(app_id="wx", openid=f"o{next(counter)}")
            try:
                reward, _ = rewards.reward_grant(
                    rule=self.rule, beneficiary_id=person.pk, source=f"s{person.pk}"
                )
            except rewards.Refused:
                return
            self.rewards.append(reward.pk)

        @rule(data=st.data(), to=st.sampled_from(["approved", "rejected", "voided"]))
        def move(self, data, to):
            if not self.rewards:
                return
            reward_id = data.draw(st.sampled_from(self.rewards))
            with contextlib.suppress(ApplicationError):  # an illegal move is refused: that is fine
                rewards.reward_move(reward_id=reward_id, to=to)

        @rule(
            data=st.data(),
            mode=st.sampled_from(
                ["ok", "fail", "timeout_after_paying", "wait_user_confirm", "rate_limited", "http500"]
            ),
            resend=st.booleans(),
        )
        def pay(self, data, mode, resend):
            approved = list(  # a reward whose last attempt failed is tried again
                payouts.payable_rewards().filter(pk__in=self.rewards).values_list("pk", flat=True)
            )
            if not approved:
                return
            reward_id = data.draw(st.sampled_from(approved))
            batch = payouts.payout_batch_create(by=self.maker, name="b", reward_ids=[reward_id])
            payouts.payout_batch_approve(batch_id=batch.pk, by=self.checker)
            payout = batch.payouts.get()
            if mode != "ok":
                pay.fail_next(mode, seconds=0.6)
            payouts.payout_send(payout_id=payout.pk)
            if mode == "wait_user_confirm" and data.draw(st.booleans()):
                pay.confirm(payout.out_bill_no)
            if resend:
                payouts.payout_send(payout_id=payout.pk)  # a redelivery, or the sweeper

        @invariant()
        def budget_is_never_negative_or_overspent(self):
            self.campaign.refresh_from_db()
            c = self.campaign
            assert c.budget_reserved >= 0 and c.budget_spent >= 0
            assert c.budget_reserved + c.budget_spent <= c.budget_total

        @invariant()
        def the_ledger_balances(self):
            cash = Reward.objects.filter(campaign=self.campaign, kind="cash")
            reserved = sum(
                cash.filter(status__in=["pending", "held", "approved"]).values_list("amount", flat=True),
                Decimal("0"),
            )
            spent = sum(cash.filter(status="paid").values_list("amount", flat=True), Decimal("0"))
            assert (self.campaign.budget_reserved, self.campaign.budget_spent) == (reserved, spent)

        @invariant()
        def at_most_one_transfer_per_reward(self):
            for reward in Reward.objects.filter(campaign=self.campaign, kind="cash", amount__gt=0):
                attempts = list(reward.payouts.all())
                succeeded = [p for p in attempts if p.status == "succeeded"]
                paid = pay.paid_fen(reward.beneficiary.openid)  # what the fake actually moved
                amount = int(reward.amount * 100)  # each participant has exactly one reward here
                assert paid in (0, amount)  # never twice, under any bill number
                assert len(succeeded) <= 1
                assert (reward.status == "paid") == bool(succeeded)
                if succeeded:
                    assert paid == amount  # we never record a payment that did not happen
                if attempts and all(p.status == "failed" for p in attempts):
                    assert paid == 0  # and failures moved no money

    run_state_machine_as_test(
        Ledger,
        settings=settings(
            max_examples=25,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
