"""Payouts against the fake WeChat Pay over real HTTP: maker–checker, exactly once."""

import threading
from decimal import Decimal

import pytest

from config.errors import ApplicationError, ConflictError
from fakes.wechatpay import signed_callback
from referrals.models import Payout, Reward, RewardRule
from referrals.services import payouts, rewards
from tests.referrals.conftest import API_KEY

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved(live_campaign, make_participant):
    """Three approved cash rewards of ¥5 for three people."""
    rule = RewardRule.objects.create(
        campaign=live_campaign,
        name="¥5",
        trigger="invitee_valid",
        kind="cash",
        amount_kind="fixed",
        amount=Decimal("5.00"),
        hold_hours=0,
    )
    made = []
    for i in range(3):
        person = make_participant()
        reward, _ = rewards.reward_grant(rule=rule, beneficiary_id=person.pk, source=f"s{i}")
        made.append(rewards.reward_move(reward_id=reward.pk, to=Reward.Status.APPROVED))
    return made


def send_all(batch):
    for payout_id in batch.payouts.values_list("pk", flat=True):
        payouts.payout_send(payout_id=payout_id)


def test_maker_cannot_approve_their_own_batch(finance, approved):
    maker, checker = finance
    batch = payouts.payout_batch_create(by=maker, name="Feb 3")
    with pytest.raises(ConflictError) as refused:
        payouts.payout_batch_approve(batch_id=batch.pk, by=maker)
    assert refused.value.code == "payout_maker_checker"
    batch.refresh_from_db()
    assert batch.status == "draft" and batch.approved_by is None
    payouts.payout_batch_approve(batch_id=batch.pk, by=checker)
    batch.refresh_from_db()
    assert batch.status == "approved" and batch.approved_by == checker
    with pytest.raises(ApplicationError):  # every approved reward is in a batch already
        payouts.payout_batch_create(by=maker, name="again")


def test_payouts_pay_each_reward_once_and_mark_it_paid(pay, finance, approved, live_campaign):
    maker, checker = finance
    batch = payouts.payout_batch_create(by=maker, name="Feb 3")
    payouts.payout_batch_approve(batch_id=batch.pk, by=checker)
    send_all(batch)
    send_all(batch)  # redelivered: nothing more moves
    assert pay.total_paid_fen() == 1500 and pay.transfers_created == 3
    assert set(Payout.objects.values_list("status", flat=True)) == {"succeeded"}
    assert set(Reward.objects.values_list("status", flat=True)) == {"paid"}
    live_campaign.refresh_from_db()
    assert (live_campaign.budget_reserved, live_campaign.budget_spent) == (Decimal("0.00"), Decimal("15.00"))


def test_paid_then_timed_out_is_found_by_query_and_never_paid_twice(pay, finance, approved):
    maker, checker = finance
    batch = payouts.payout_batch_create(by=maker, name="Feb 3")
    payouts.payout_batch_approve(batch_id=batch.pk, by=checker)
    first = batch.payouts.first()
    pay.fail_next("timeout_after_paying", seconds=2)
    assert payouts.payout_send(payout_id=first.pk).status == "sent"  # we do not know yet
    assert pay.paid_fen(first.openid) == 500  # but the money moved
    assert payouts.payout_send(payout_id=first.pk).status == "succeeded"  # the retry queried first
    assert pay.paid_fen(first.openid) == 500 and pay.transfers_created == 1


def test_a_definite_failure_moves_no_money_and_leaves_the_reward_approved(pay, finance, approved):
    maker, checker = finance
    batch = payouts.payout_batch_create(by=maker, name="Feb 3")
    payouts.payout_batch_approve(batch_id=batch.pk, by=checker)
    first = batch.payouts.first()
    pay.fail_next("fail")
    assert payouts.payout_send(payout_id=first.pk).status == "failed"
    assert pay.paid_fen(first.openid) == 0
    first.reward.refresh_from_db()
    assert first.reward.status == Reward.Status.APPROVED


def test_rate_limited_and_500_are_retried_later_and_pay_once(pay, finance, approved):
    maker, checker = finance
    batch = payouts.payout_batch_create(by=maker, name="Feb 3")
    payouts.payout_batch_approve(batch_id=batch.pk, by=checker)
    first = batch.payouts.first()
    pay.fail_next("rate_limited")
    assert payouts.payout_send(payout_id=first.pk).status == "sent"
    pay.fail_next("http500")
    assert payouts.payout_send(payout_id=first.pk).status == "sent"
    assert payouts.payout_send(payout_id=first.pk).status == "succeeded"
    assert pay.paid_fen(first.openid) == 500


def test_wait_user_confirm_then_callbacks_applied_once_and_forgeries_refused(pay, finance, approved, client):
    import orjson

    maker, checker = finance
    batch = payouts.payout_batch_create(by=maker, name="Feb 3")
    payouts.payout_batch_approve(batch_id=batch.pk, by=checker)
    first = batch.payouts.first()
    pay.fail_next("wait_user_confirm")
    assert payouts.payout_send(payout_id=first.pk).status == "wait_user"
    pay.confirm(first.out_bill_no)
    raw_headers, body = signed_callback(
        API_KEY,
        {
            "out_bill_no": first.out_bill_no,
            "transfer_bill_no": "T1",
            "state": "SUCCESS",
            "transfer_amount": 500,
            "openid": first.openid,
            "update_time": "2027-02-03T10:00:00+08:00",
        },
    )
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in raw_headers.items()}
    for _ in range(3):  # WeChat Pay delivers callbacks more than once
        response = client.post("/api/v1/wechatpay/callback", body, content_type="application/json", **headers)
        assert response.json()["code"] == "SUCCESS"
    first.refresh_from_db()
    assert first.status == "succeeded" and first.reward.status == Reward.Status.PAID
    assert first.reward.transitions.filter(to_status="paid").count() == 1
    envelope = orjson.loads(body)
    forged = orjson.dumps(envelope | {"summary": "forged"})  # same resource, not what was signed
    response = client.post("/api/v1/wechatpay/callback", forged, content_type="application/json", **headers)
    assert response.status_code == 401


def test_a_callback_about_another_amount_is_parked_not_paid(pay, finance, approved, client):

    maker, checker = finance
    batch = payouts.payout_batch_create(by=maker, name="Feb 3")
    payouts.payout_batch_approve(batch_id=batch.pk, by=checker)
    first = batch.payouts.first()
    raw_headers, body = signed_callback(
        API_KEY,
        {
            "out_bill_no": first.out_bill_no,
            "transfer_bill_no": "T1",
            "state": "SUCCESS",
            "transfer_amount": 99900,
            "openid": first.openid,
            "update_time": "x",
        },
    )
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in raw_headers.items()}
    client.post("/api/v1/wechatpay/callback", body, content_type="application/json", **headers)
    first.refresh_from_db()
    assert first.status == "parked" and first.reward.status == Reward.Status.APPROVED


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_sends_of_one_payout_pay_once(pay, finance, approved):
    from django.db import connection

    maker, checker = finance
    batch = payouts.payout_batch_create(by=maker, name="Feb 3")
    payouts.payout_batch_approve(batch_id=batch.pk, by=checker)
    first = batch.payouts.first()
    barrier = threading.Barrier(6)

    def send():
        try:
            barrier.wait()
            payouts.payout_send(payout_id=first.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    payouts.payout_send(payout_id=first.pk)
    first.refresh_from_db()
    assert first.status == "succeeded" and pay.paid_fen(first.openid) == 500 and pay.transfers_created == 1


def test_daily_reconciliation_lists_every_difference(pay, finance, approved, admin_client):
    from django.urls import reverse
    from django.utils import timezone

    from referrals.models import Reconciliation

    maker, checker = finance
    batch = payouts.payout_batch_create(by=maker, name="Feb 3")
    payouts.payout_batch_approve(batch_id=batch.pk, by=checker)
    send_all(batch)
    first, second, third = batch.payouts.all()
    # given our records drift from WeChat Pay's: a paid one we think failed, one we think is
    # paid at another amount
    Payout.objects.filter(pk=first.pk).update(status="failed")
    Payout.objects.filter(pk=second.pk).update(amount_fen=700)
    # when
    run = payouts.payouts_reconcile(day=timezone.now().date())
    # then each difference is listed, and the matching one is not
    assert run.checked == 3
    notes = {d["out_bill_no"]: d["note"] for d in run.differences}
    assert set(notes) == {first.out_bill_no, second.out_bill_no}
    assert (
        "state SUCCESS" in notes[first.out_bill_no]
        and "amount 500 fen, ours 700" in notes[second.out_bill_no]
    )
    page = admin_client.get(reverse("admin:referrals_reconciliation_change", args=[run.pk])).content.decode()
    assert second.out_bill_no in page and third.out_bill_no not in page
    assert Reconciliation.objects.count() == 1


def test_a_reward_in_a_batch_cannot_be_rejected_and_a_changed_reward_is_never_sent(pay, finance, approved):
    maker, checker = finance
    batch = payouts.payout_batch_create(by=maker, name="Feb 3")
    first = batch.payouts.first()
    with pytest.raises(ConflictError) as refused:
        rewards.reward_move(reward_id=first.reward_id, to=Reward.Status.REJECTED)
    assert refused.value.code == "reward_in_payout"
    # even if the reward moved by other means, the payout checks it before sending
    Reward.objects.filter(pk=first.reward_id).update(status=Reward.Status.HELD)
    payouts.payout_batch_approve(batch_id=batch.pk, by=checker)
    assert payouts.payout_send(payout_id=first.pk).status == "failed"
    assert pay.paid_fen(first.openid) == 0


def test_saving_a_campaign_in_the_admin_keeps_budget_counters_moved_meanwhile(
    admin_client, live_campaign, sharer
):
    from django.urls import reverse

    url = reverse("admin:campaigns_campaign_change", args=[live_campaign.pk])
    page = admin_client.get(url)  # the form is read now…
    rule = RewardRule.objects.create(
        campaign=live_campaign,
        name="¥5",
        trigger="invitee_valid",
        kind="cash",
        amount_kind="fixed",
        amount=Decimal("5.00"),
    )
    rewards.reward_grant(rule=rule, beneficiary_id=sharer.pk, source="x")  # …a grant lands meanwhile
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and not isinstance(v, list | dict)}
    from django.utils import timezone

    data.update(
        {
            "name": "Renamed",
            "owner": "",
            "budget_daily": "",
            "valid_within_hours": "",
            "starts_at_0": timezone.localtime(live_campaign.starts_at).strftime("%Y-%m-%d"),
            "starts_at_1": timezone.localtime(live_campaign.starts_at).strftime("%H:%M:%S"),
            "ends_at_0": timezone.localtime(live_campaign.ends_at).strftime("%Y-%m-%d"),
            "ends_at_1": timezone.localtime(live_campaign.ends_at).strftime("%H:%M:%S"),
            **{
                f"{p}-{k}": v
                for p in ("channels", "templates", "reward_rules", "transitions")
                for k, v in {"TOTAL_FORMS": "0", "INITIAL_FORMS": "0"}.items()
            },
        }
    )
    data["reward_rules-TOTAL_FORMS"] = data["reward_rules-INITIAL_FORMS"] = "0"
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    live_campaign.refresh_from_db()
    assert live_campaign.name == "Renamed" and live_campaign.budget_reserved == Decimal("5.00")
