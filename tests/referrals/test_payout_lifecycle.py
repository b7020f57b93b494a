"""A payout's life after the happy path: holds, retries with new bill numbers, clawbacks
recovered from later payouts, WeChat Pay's daily limits held on our side, and refunds that
arrive while a commission is being paid. Real HTTP to the fake WeChat Pay."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from config.errors import ApplicationError
from referrals.models import ClawbackRecovery, Payout, RefundedOrder, Reward, RewardCap, RewardRule
from referrals.services import payouts, reward_triggers, rewards

pytestmark = pytest.mark.django_db


@pytest.fixture
def cash_rule(live_campaign):
    return RewardRule.objects.create(
        campaign=live_campaign,
        name="¥5",
        trigger="invitee_valid",
        kind="cash",
        amount_kind="fixed",
        amount=Decimal("5.00"),
        hold_hours=0,
    )


def approved_reward(rule, person, source="s1") -> Reward:
    reward, _ = rewards.reward_grant(rule=rule, beneficiary_id=person.pk, source=source)
    return rewards.reward_move(reward_id=reward.pk, to=Reward.Status.APPROVED)


def batch_and_send(finance, **kwargs) -> list[Payout]:
    maker, checker = finance
    batch = payouts.payout_batch_create(by=maker, name="batch", **kwargs)
    payouts.payout_batch_approve(batch_id=batch.pk, by=checker)
    return [payouts.payout_send(payout_id=pk) for pk in batch.payouts.values_list("pk", flat=True)]


def spent(campaign) -> Decimal:
    campaign.refresh_from_db()
    return campaign.budget_spent


def test_a_reward_is_not_payable_before_its_hold_ends(live_campaign, make_participant, finance):
    rule = RewardRule.objects.create(
        campaign=live_campaign, name="held", kind="cash", amount_kind="fixed", amount=Decimal("5.00")
    )
    reward = approved_reward(rule, make_participant())
    assert reward.payable_at > timezone.now() + timedelta(hours=71)
    with pytest.raises(ApplicationError) as nothing:
        payouts.payout_batch_create(by=finance[0], name="too early")
    assert nothing.value.code == "payout_nothing_to_pay"
    Reward.objects.filter(pk=reward.pk).update(payable_at=timezone.now() - timedelta(seconds=1))
    batch = payouts.payout_batch_create(by=finance[0], name="on time")
    assert list(batch.payouts.values_list("reward_id", flat=True)) == [reward.pk]


def test_a_confirmed_failure_is_retried_under_a_new_bill_number_and_pays_once(
    pay, finance, cash_rule, make_participant, settings
):
    settings.FISSION_PAYOUT_MAX_ATTEMPTS = 3
    person = make_participant()
    reward = approved_reward(cash_rule, person)
    pay.fail_next("fail")
    [first] = batch_and_send(finance)
    assert (first.status, first.out_bill_no) == ("failed", f"FSN{reward.pk}A1")
    reward.refresh_from_db()
    assert reward.status == Reward.Status.APPROVED  # still owed
    [second] = batch_and_send(finance)
    assert (second.status, second.out_bill_no, second.attempt) == ("succeeded", f"FSN{reward.pk}A2", 2)
    reward.refresh_from_db()
    assert reward.status == Reward.Status.PAID
    assert pay.stats()["paid_fen_by_openid"] == {person.openid: 500}
    with pytest.raises(ApplicationError):  # paid: never in a batch again
        payouts.payout_batch_create(by=finance[0], name="again")


def test_after_too_many_failures_a_reward_waits_for_a_person(
    pay, finance, cash_rule, make_participant, settings
):
    settings.FISSION_PAYOUT_MAX_ATTEMPTS = 2
    reward = approved_reward(cash_rule, make_participant())
    for _ in range(2):
        pay.fail_next("fail")
        [payout] = batch_and_send(finance)
        assert payout.status == "failed"
    with pytest.raises(ApplicationError):
        payouts.payout_batch_create(by=finance[0], name="third")
    rewards.reward_move(reward_id=reward.pk, to=Reward.Status.REJECTED, note="paid by bank transfer")
    reward.refresh_from_db()
    assert reward.status == Reward.Status.REJECTED


def test_one_live_attempt_per_reward_is_held_by_the_database(pay, finance, cash_rule, make_participant):
    from django.db import IntegrityError, transaction

    reward = approved_reward(cash_rule, make_participant())
    batch = payouts.payout_batch_create(by=finance[0], name="one")
    live = batch.payouts.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Payout.objects.create(
            batch=batch, reward=reward, attempt=2, openid=live.openid, amount_fen=500, out_bill_no="X2"
        )


def clawback_of(rule, person, amount: str) -> Reward:
    """A paid commission whose order was refunded: the negative entry left behind."""
    paid, _ = rewards.reward_grant(rule=rule, beneficiary_id=person.pk, source=f"order:R-{amount}")
    rewards.reward_move(reward_id=paid.pk, to=Reward.Status.APPROVED)
    rewards.reward_move(reward_id=paid.pk, to=Reward.Status.PAID)
    reward_triggers.rewards_refund_order(campaign_id=rule.campaign_id, order_id=f"R-{amount}")
    return Reward.objects.get(source=f"clawback:{paid.pk}")


def test_a_clawback_is_recovered_from_the_next_payout(
    pay, finance, cash_rule, make_participant, live_campaign
):
    person = make_participant()
    cash_rule.amount = Decimal("3.00")
    cash_rule.save()
    clawback = clawback_of(cash_rule, person, "3.00")
    assert spent(live_campaign) == Decimal("3.00")
    cash_rule.amount = Decimal("5.00")
    cash_rule.save()
    reward = approved_reward(cash_rule, person, source="later")
    [payout] = batch_and_send(finance)
    assert (payout.amount_fen, payout.offset_fen, payout.status) == (200, 300, "succeeded")
    assert pay.stats()["paid_fen_by_openid"] == {person.openid: 200}  # ¥5 earned, ¥3 owed
    reward.refresh_from_db()
    assert reward.status == Reward.Status.PAID
    # ¥3 paid then recovered, ¥5 paid: the campaign spent ¥5 net
    assert spent(live_campaign) == Decimal("5.00")
    assert ClawbackRecovery.objects.get().clawback == clawback
    # fully recovered: a later reward pays in full
    approved_reward(cash_rule, person, source="even later")
    [payout] = batch_and_send(finance)
    assert (payout.amount_fen, payout.offset_fen) == (500, 0)


def test_a_payout_sends_at_least_ten_fen_or_nothing(pay, finance, cash_rule, make_participant):
    person = make_participant()
    cash_rule.amount = Decimal("4.95")
    cash_rule.save()
    clawback_of(cash_rule, person, "4.95")
    cash_rule.amount = Decimal("5.00")
    cash_rule.save()
    approved_reward(cash_rule, person, source="a")
    [payout] = batch_and_send(finance)
    assert (payout.amount_fen, payout.offset_fen) == (10, 490)  # 5 fen short would be refused
    # a debt as large as the reward: nothing is sent, the reward is paid by netting
    clawback_of(cash_rule, person, "5.00")
    before = len(pay.stats()["bills"])
    reward = approved_reward(cash_rule, person, source="b")
    [payout] = batch_and_send(finance)
    assert (payout.amount_fen, payout.offset_fen, payout.status) == (0, 500, "succeeded")
    assert len(pay.stats()["bills"]) == before  # WeChat Pay was not called
    reward.refresh_from_db()
    assert reward.status == Reward.Status.PAID
    # what is left of the first clawback (5 fen) waits for the next payout
    approved_reward(cash_rule, person, source="c")
    [payout] = batch_and_send(finance)
    assert (payout.amount_fen, payout.offset_fen) == (495, 5)


def test_a_failed_payout_recovers_nothing_and_the_next_attempt_recovers_it(
    pay, finance, cash_rule, make_participant, live_campaign
):
    person = make_participant()
    cash_rule.amount = Decimal("2.00")
    cash_rule.save()
    clawback_of(cash_rule, person, "2.00")
    cash_rule.amount = Decimal("5.00")
    cash_rule.save()
    approved_reward(cash_rule, person, source="x")
    pay.fail_next("fail")
    [failed] = batch_and_send(finance)
    assert failed.status == "failed" and spent(live_campaign) == Decimal("2.00")
    [retry] = batch_and_send(finance)
    assert (retry.amount_fen, retry.offset_fen, retry.status) == (300, 200, "succeeded")
    assert spent(live_campaign) == Decimal("5.00")


def test_the_recipients_daily_limit_is_held_before_sending(
    pay, finance, cash_rule, make_participant, settings
):
    settings.FISSION_PAYOUT_USER_DAILY_YUAN = Decimal("8.00")
    person = make_participant()
    approved_reward(cash_rule, person, source="one")
    approved_reward(cash_rule, person, source="two")
    first, second = batch_and_send(finance)
    assert first.status == "succeeded"
    assert (second.status, second.deliveries) == ("queued", 0)  # waits; not a failed delivery
    assert second.fail_reason.startswith("waiting: ")
    assert pay.stats()["paid_fen_by_openid"] == {person.openid: 500}
    # tomorrow (a fresh counter) it goes
    RewardCap.objects.filter(key__startswith="wxpay:u:").delete()
    assert payouts.payout_send(payout_id=second.pk).status == "succeeded"


def test_a_failed_transfer_gives_its_daily_limit_back(pay, finance, cash_rule, make_participant, settings):
    settings.FISSION_PAYOUT_USER_DAILY_YUAN = Decimal("5.00")
    person = make_participant()
    approved_reward(cash_rule, person)
    pay.fail_next("fail")
    [failed] = batch_and_send(finance)
    assert failed.status == "failed"
    assert RewardCap.objects.get(key__startswith="wxpay:u:").used == 0
    [retry] = batch_and_send(finance)
    assert retry.status == "succeeded"


def test_a_refund_during_the_payout_claws_back_once_it_is_paid(
    pay, finance, cash_rule, make_participant, live_campaign
):
    person = make_participant()
    reward, _ = rewards.reward_grant(rule=cash_rule, beneficiary_id=person.pk, source="order:SO-9")
    rewards.reward_move(reward_id=reward.pk, to=Reward.Status.APPROVED)
    pay.fail_next("wait_user_confirm")
    [payout] = batch_and_send(finance)
    assert payout.status == "wait_user"
    # the refund arrives while the money is on its way: nothing can be voided now
    assert reward_triggers.rewards_refund_order(campaign_id=live_campaign.pk, order_id="SO-9") == {
        "voided": 0,
        "clawed_back": 0,
    }
    pay.confirm(payout.out_bill_no)
    payouts.payout_send(payout_id=payout.pk)  # the sweeper's query finds it paid
    reward.refresh_from_db()
    assert reward.status == Reward.Status.PAID
    assert Reward.objects.get(source=f"clawback:{reward.pk}").amount == Decimal("-5.00")


def test_a_commission_refunded_before_its_batch_is_sent_is_not_sent(
    pay, finance, cash_rule, make_participant, live_campaign
):
    person = make_participant()
    reward, _ = rewards.reward_grant(rule=cash_rule, beneficiary_id=person.pk, source="order:SO-10")
    rewards.reward_move(reward_id=reward.pk, to=Reward.Status.APPROVED)
    maker, checker = finance
    batch = payouts.payout_batch_create(by=maker, name="drafted")
    reward_triggers.rewards_refund_order(campaign_id=live_campaign.pk, order_id="SO-10")
    payouts.payout_batch_approve(batch_id=batch.pk, by=checker)
    payout = payouts.payout_send(payout_id=batch.payouts.get().pk)
    assert (payout.status, payout.fail_reason) == ("failed", "not sent: the order was refunded")
    assert pay.stats()["bills"] == {}  # WeChat Pay never heard of it
    reward.refresh_from_db()
    live_campaign.refresh_from_db()
    assert reward.status == Reward.Status.VOIDED and live_campaign.budget_reserved == 0


def test_a_refund_during_a_failed_payout_voids_the_reward(
    pay, finance, cash_rule, make_participant, live_campaign
):
    person = make_participant()
    reward, _ = rewards.reward_grant(rule=cash_rule, beneficiary_id=person.pk, source="order:SO-8")
    rewards.reward_move(reward_id=reward.pk, to=Reward.Status.APPROVED)
    maker, checker = finance
    batch = payouts.payout_batch_create(by=maker, name="b")
    payouts.payout_batch_approve(batch_id=batch.pk, by=checker)
    reward_triggers.rewards_refund_order(campaign_id=live_campaign.pk, order_id="SO-8")
    assert RefundedOrder.objects.filter(order_id="SO-8").exists()
    pay.fail_next("fail")
    assert payouts.payout_send(payout_id=batch.payouts.get().pk).status == "failed"
    reward.refresh_from_db()
    live_campaign.refresh_from_db()
    assert reward.status == Reward.Status.VOIDED and live_campaign.budget_reserved == 0


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_expired_confirmation_is_reported_to_the_notify_url_and_retried(
    pay, finance, cash_rule, make_participant, live_server, settings
):
    import time

    settings.WECHATPAY_NOTIFY_URL = f"{live_server.url}/api/v1/wechatpay/callback"
    person = make_participant()
    reward = approved_reward(cash_rule, person)
    pay.fail_next("wait_user_confirm")
    [waiting] = batch_and_send(finance)
    assert waiting.status == "wait_user"
    pay.expire(waiting.out_bill_no)  # 24 h pass: WeChat Pay cancels it and calls our notify_url
    for _ in range(100):
        waiting.refresh_from_db()
        if waiting.status != "wait_user":
            break
        time.sleep(0.05)
    assert (waiting.status, waiting.provider_state) == ("failed", "CANCELLED")
    [retry] = batch_and_send(finance)
    assert (retry.out_bill_no, retry.status) == (f"FSN{reward.pk}A2", "succeeded")
    assert pay.stats()["paid_fen_by_openid"] == {person.openid: 500}


def test_a_transfer_must_report_its_scene(pay):
    """The fake refuses what WeChat Pay refuses; the client always reports the scene."""
    from referrals import wechatpay

    with pytest.raises(wechatpay.TransferRejected) as refused:
        wechatpay._call(
            "transfer",
            "POST",
            wechatpay.TRANSFER_PATH,
            "NOSCENE1",
            {
                "appid": "wx",
                "out_bill_no": "NOSCENE1",
                "openid": "o",
                "transfer_amount": 100,
                "transfer_remark": "r",
                "transfer_scene_id": "1000",
            },
        )
    assert refused.value.code == "PARAM_ERROR" and "transfer_scene_report_infos" in str(refused.value)


def test_a_refused_query_after_an_unknown_outcome_never_leads_to_a_second_bill(
    pay, finance, cash_rule, make_participant, settings
):
    person = make_participant()
    reward = approved_reward(cash_rule, person)
    pay.fail_next("wait_user_confirm")
    [payout] = batch_and_send(finance)
    assert payout.status == "wait_user"
    # the merchant's keys are wrong for a while: every request is refused (SIGN_ERROR)
    good_key = settings.WECHATPAY_MCHID
    settings.WECHATPAY_MCHID = "1900000999"
    for _ in range(3):
        assert payouts.payout_send(payout_id=payout.pk).status == "wait_user"  # not failed
    settings.WECHATPAY_MCHID = good_key
    with pytest.raises(ApplicationError):  # no second attempt is offered meanwhile
        payouts.payout_batch_create(by=finance[0], name="again")
    pay.confirm(payout.out_bill_no)
    assert payouts.payout_send(payout_id=payout.pk).status == "succeeded"
    reward.refresh_from_db()
    assert reward.status == "paid" and pay.stats()["paid_fen_by_openid"] == {person.openid: 500}


def test_a_parked_payout_is_resolved_by_a_person(pay, finance, cash_rule, make_participant):
    person = make_participant()
    reward = approved_reward(cash_rule, person)
    maker, checker = finance
    batch = payouts.payout_batch_create(by=maker, name="b")
    payouts.payout_batch_approve(batch_id=batch.pk, by=checker)
    payout = batch.payouts.get()
    Payout.objects.filter(pk=payout.pk).update(deliveries=3)  # three workers died on it
    assert payouts.payout_send(payout_id=payout.pk).status == "parked"
    assert pay.stats()["bills"] == {}
    with pytest.raises(ApplicationError) as unknown_bill:  # WeChat Pay never saw it
        payouts.payout_recheck(payout_id=payout.pk)
    assert "NOT_FOUND" in unknown_bill.value.message
    payouts.payout_mark_failed(payout_id=payout.pk, by=checker, note="no such bill in the merchant platform")
    [retry] = batch_and_send(finance)
    assert (retry.attempt, retry.status) == (2, "succeeded")
    reward.refresh_from_db()
    assert reward.status == "paid"


def test_a_draft_batch_is_never_sent_and_can_be_discarded(
    pay, finance, cash_rule, make_participant, admin_client
):
    from django.urls import reverse

    from referrals.models import PayoutBatch

    person = make_participant()
    cash_rule.amount = Decimal("2.00")
    cash_rule.save()
    clawback_of(cash_rule, person, "2.00")
    cash_rule.amount = Decimal("5.00")
    cash_rule.save()
    reward = approved_reward(cash_rule, person, source="x")
    draft = payouts.payout_batch_create(by=finance[0], name="draft")
    payout = draft.payouts.get()
    assert (payout.amount_fen, payout.offset_fen) == (300, 200)
    assert payouts.payout_send(payout_id=payout.pk).status == "queued"  # a stray delivery: not sent
    assert pay.stats()["bills"] == {}
    # the checker will not approve it: discarded, the reward and the debt are free again
    response = admin_client.post(
        reverse("admin:referrals_payoutbatch_changelist"),
        {"action": "discard", "_selected_action": [draft.pk]},
        follow=True,
    )
    assert "1 reward(s) can be batched again" in response.content.decode()
    assert not PayoutBatch.objects.filter(pk=draft.pk).exists()
    [sent] = batch_and_send(finance)
    assert (sent.out_bill_no, sent.amount_fen, sent.offset_fen, sent.status) == (
        f"FSN{reward.pk}A1",
        300,
        200,
        "succeeded",
    )
