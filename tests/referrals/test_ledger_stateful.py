"""A Hypothesis state machine over the whole ledger: grant (to new or returning participants,
some of them order commissions) / approve / reject / void / fraud hold and release / batch /
send (with the provider succeeding, failing, paying then timing out, answering 429 or 500,
or waiting for the user) / user confirms or lets it expire / callbacks, duplicated /
refunds (voiding or clawing back, recovered from later payouts), and the invariants after
every step:

- the budget is never negative, and reserved + spent ≤ budget;
- the ledger balances: reserved = what is owed, spent = what was paid less what was
  recovered = the money that left;
- at most one successful transfer per reward, and the fake's money matches our records;
- a reward is paid iff exactly one of its attempts succeeded.
"""

import contextlib
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db.models import Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from campaigns.models import Campaign
from config.errors import ApplicationError
from fakes.wechatpay import signed_callback, start_in_thread
from referrals.models import ClawbackRecovery, Participant, Payout, Reward, RewardRule
from referrals.services import payouts, reward_triggers, rewards

API_KEY = "stateful-test-apiv3-key-32-bytes"
BUDGET = Decimal("100.00")
MODES = ["ok", "fail", "timeout_after_paying", "wait_user_confirm", "rate_limited", "http500"]


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
            self.people: list[int] = []
            self.orders: list[str] = []

        def _pick(self, index, queryset):
            """One of the rows, by a drawn index: what is drawn never depends on the state, so
            Hypothesis can replay and shrink a failure."""
            ids = list(queryset.order_by("pk").values_list("pk", flat=True))
            return ids[index % len(ids)] if ids else None

        @rule(
            index=st.integers(0, 1000),
            amount=st.sampled_from(["0.10", "3.00", "5.00", "12.34"]),
            returning=st.booleans(),
            order=st.booleans(),
        )
        def grant(self, index, amount, returning, order):
            RewardRule.objects.filter(pk=self.rule.pk).update(amount=Decimal(amount))
            self.rule.refresh_from_db()
            if returning and self.people:
                person_id = self.people[index % len(self.people)]
            else:
                person_id = Participant.objects.create(app_id="wx", openid=f"o{next(counter)}").pk
                self.people.append(person_id)
            n = next(counter)
            source = f"order:O{n}" if order else f"s{n}"
            with contextlib.suppress(rewards.Refused):
                rewards.reward_grant(rule=self.rule, beneficiary_id=person_id, source=source)
                if order:
                    self.orders.append(f"O{n}")

        @rule(index=st.integers(0, 1000), to=st.sampled_from(["approved", "rejected", "voided"]))
        def move(self, index, to):
            reward_id = self._pick(index, Reward.objects.filter(campaign=self.campaign, amount__gt=0))
            if reward_id is not None:
                with contextlib.suppress(ApplicationError):  # an illegal move is refused: that is fine
                    rewards.reward_move(reward_id=reward_id, to=to)

        @rule(index=st.integers(0, 1000))
        def approve_batch_and_pay(self, index):
            """The happy path in one step, so that longer stories (paid, refunded, clawed back,
            recovered from the next payout) are reached often."""
            reward_id = self._pick(
                index,
                Reward.objects.filter(campaign=self.campaign, status__in=["held", "pending", "approved"]),
            )
            if reward_id is None:
                return
            with contextlib.suppress(ApplicationError):
                rewards.reward_move(reward_id=reward_id, to="approved")
                batch = payouts.payout_batch_create(by=self.maker, name="b", reward_ids=[reward_id])
                payouts.payout_batch_approve(batch_id=batch.pk, by=self.checker)
                payouts.payout_send(payout_id=batch.payouts.get().pk)

        @rule(amount=st.sampled_from(["3.00", "5.00", "12.34"]), mode=st.sampled_from(MODES))
        def paid_then_refunded(self, amount, mode):
            """A commission paid (or not: `mode`), its order refunded, so a clawback may wait
            for the beneficiary's next reward, which is granted and approved here."""
            RewardRule.objects.filter(pk=self.rule.pk).update(amount=Decimal(amount))
            self.rule.refresh_from_db()
            person = Participant.objects.create(app_id="wx", openid=f"o{next(counter)}").pk
            self.people.append(person)
            order = f"O{next(counter)}"
            with contextlib.suppress(ApplicationError):
                reward, _ = rewards.reward_grant(
                    rule=self.rule, beneficiary_id=person, source=f"order:{order}"
                )
                self.orders.append(order)
                rewards.reward_move(reward_id=reward.pk, to="approved")
                batch = payouts.payout_batch_create(by=self.maker, name="b", reward_ids=[reward.pk])
                payouts.payout_batch_approve(batch_id=batch.pk, by=self.checker)
                if mode != "ok":
                    pay.fail_next(mode, seconds=0.6)
                payouts.payout_send(payout_id=batch.payouts.get().pk)
                reward_triggers.rewards_refund_order(campaign_id=self.campaign.pk, order_id=order)
                later, _ = rewards.reward_grant(rule=self.rule, beneficiary_id=person, source=f"later{order}")
                rewards.reward_move(reward_id=later.pk, to="approved")

        @rule(index=st.integers(0, 1000), release=st.booleans())
        def fraud_hold(self, index, release):
            reward_id = self._pick(index, Reward.objects.filter(campaign=self.campaign, amount__gt=0))
            if reward_id is not None:
                with contextlib.suppress(ApplicationError):
                    (rewards.reward_release if release else rewards.reward_hold)(reward_id=reward_id)

        @rule()
        def batch(self):
            with contextlib.suppress(ApplicationError):  # nothing payable
                batch = payouts.payout_batch_create(
                    by=self.maker,
                    name="b",
                    reward_ids=list(
                        Reward.objects.filter(campaign=self.campaign).values_list("pk", flat=True)
                    ),
                )
                payouts.payout_batch_approve(batch_id=batch.pk, by=self.checker)

        @rule(index=st.integers(0, 1000), mode=st.sampled_from(MODES), again=st.booleans())
        def send(self, index, mode, again):
            payout_id = self._pick(
                index, Payout.objects.filter(reward__campaign=self.campaign).exclude(status__in=Payout.FINAL)
            )
            if payout_id is None:
                return
            if mode != "ok":
                pay.fail_next(mode, seconds=0.6)
            payouts.payout_send(payout_id=payout_id)
            if again:
                payouts.payout_send(payout_id=payout_id)  # a redelivery, or the sweeper

        @rule(index=st.integers(0, 1000), confirm=st.booleans())
        def user_decides(self, index, confirm):
            payout = Payout.objects.filter(reward__campaign=self.campaign, provider_state="WAIT_USER_CONFIRM")
            payout_id = self._pick(index, payout)
            if payout_id is None:
                return
            bill = Payout.objects.get(pk=payout_id).out_bill_no
            if pay.stats()["bills"][bill]["state"] == "WAIT_USER_CONFIRM":  # not already decided
                pay.confirm(bill) if confirm else pay.expire(bill)

        @rule(index=st.integers(0, 1000), copies=st.integers(1, 3))
        def callback(self, index, copies):
            """WeChat Pay reports a bill's current state, signed and encrypted, more than once."""
            payout_id = self._pick(
                index, Payout.objects.filter(reward__campaign=self.campaign, amount_fen__gt=0)
            )
            if payout_id is None:
                return
            payout = Payout.objects.get(pk=payout_id)
            bill = pay.stats()["bills"].get(payout.out_bill_no)
            if bill is None or bill["state"] not in ("SUCCESS", "FAIL", "CANCELLED"):
                return
            headers, body = signed_callback(
                API_KEY,
                {
                    "out_bill_no": payout.out_bill_no,
                    "transfer_bill_no": bill["transfer_bill_no"],
                    "state": bill["state"],
                    "transfer_amount": bill["transfer_amount"],
                    "openid": bill["openid"],
                    "update_time": bill["update_time"],
                },
            )
            for _ in range(copies):
                payouts.payout_callback_apply(headers=headers, body=body)

        @rule(index=st.integers(0, 1000), of_a_paid_one=st.booleans())
        def refund(self, index, of_a_paid_one):
            paid = list(
                Reward.objects.filter(
                    campaign=self.campaign, status="paid", source__startswith="order:"
                ).values_list("source", flat=True)
            )
            orders = [s.removeprefix("order:") for s in paid] if of_a_paid_one and paid else self.orders
            if orders:
                order_id = orders[index % len(orders)]
                reward_triggers.rewards_refund_order(campaign_id=self.campaign.pk, order_id=order_id)

        @invariant()
        def budget_is_never_negative_or_overspent(self):
            self.campaign.refresh_from_db()
            c = self.campaign
            assert c.budget_reserved >= 0 and c.budget_spent >= 0
            assert c.budget_reserved + c.budget_spent <= c.budget_total

        @invariant()
        def the_ledger_balances(self):
            cash = Reward.objects.filter(campaign=self.campaign, kind="cash")
            owed = (
                cash.filter(status__in=["pending", "held", "approved"]).aggregate(s=Sum("amount"))["s"] or 0
            )
            paid = cash.filter(status="paid").aggregate(s=Sum("amount"))["s"] or 0
            recovered_fen = (
                ClawbackRecovery.objects.filter(
                    clawback__campaign=self.campaign, payout__status="succeeded"
                ).aggregate(s=Sum("amount_fen"))["s"]
                or 0
            )
            assert self.campaign.budget_reserved == owed
            assert self.campaign.budget_spent == paid - Decimal(recovered_fen) / 100
            # and the money that left equals what the campaign spent
            sent_fen = (
                Payout.objects.filter(reward__campaign=self.campaign, status="succeeded").aggregate(
                    s=Sum("amount_fen")
                )["s"]
                or 0
            )
            assert Decimal(sent_fen) / 100 == self.campaign.budget_spent

        @invariant()
        def at_most_one_transfer_per_reward(self):
            bills = pay.stats()["bills"]
            for reward in Reward.objects.filter(campaign=self.campaign, kind="cash", amount__gt=0):
                attempts = list(reward.payouts.all())
                succeeded = [p for p in attempts if p.status == "succeeded"]
                assert len(succeeded) <= 1
                assert (reward.status == "paid") == bool(succeeded)
                theirs = [bills[p.out_bill_no] for p in attempts if p.out_bill_no in bills]
                assert sum(1 for b in theirs if b["state"] == "SUCCESS") <= 1  # never paid twice
                for p in attempts:
                    bill = bills.get(p.out_bill_no)
                    if p.status == "succeeded" and p.amount_fen:
                        assert bill["state"] == "SUCCESS" and bill["transfer_amount"] == p.amount_fen
                    if p.status == "failed" and bill is not None:
                        assert bill["state"] != "SUCCESS"  # a failure moved no money

    run_state_machine_as_test(
        Ledger,
        settings=settings(
            max_examples=40,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
