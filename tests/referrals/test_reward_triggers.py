"""What earns a reward, beyond joins and valid invitees: refunds in either order, event
triggers and holds released by events, the mechanics hook, the sweeper that re-derives lost
grants, coupon code banks, the cash minimum and caps given back. Real PostgreSQL; races run
in real threads."""

import threading
import time
from datetime import timedelta
from decimal import Decimal

import orjson
import pytest
from django.db import connection
from django.utils import timezone

from referrals.api.auth import sign
from referrals.models import ApiKey, CouponCode, Referral, RefundedOrder, Reward, RewardRule
from referrals.services import attribution, reward_triggers, rewards
from tests.conftest import share_link_for

R = RewardRule


def rule(campaign, **fields) -> RewardRule:
    defaults = {
        "name": "r",
        "trigger": R.Trigger.INVITEE_VALID,
        "kind": R.Kind.CASH,
        "amount_kind": R.AmountKind.FIXED,
        "amount": Decimal("5.00"),
        "hold_hours": 72,
    }
    return RewardRule.objects.create(campaign=campaign, **(defaults | fields))


def commission(campaign, **fields) -> RewardRule:
    return rule(
        campaign,
        trigger=R.Trigger.ORDER_PAID,
        amount_kind=R.AmountKind.PERCENT,
        amount=None,
        percent=Decimal("10"),
        amount_cap=Decimal("50.00"),
        **fields,
    )


def joined(campaign, sharer, invitee) -> Referral:
    code = share_link_for(campaign, sharer).code
    return attribution.campaign_join(campaign=campaign, participant=invitee, code=code)["referral"]


@pytest.fixture
def report(client, django_capture_on_commit_callbacks):
    """POST server events, signed, running what they send to Celery after commit."""
    raw, prefix, salt, digest = ApiKey.generate()
    ApiKey.objects.create(name="Shop", prefix=prefix, salt=salt, key_hash=digest)

    def send(events, *, run_tasks=True):
        body = orjson.dumps({"events": events})
        ts = int(time.time())
        with django_capture_on_commit_callbacks(execute=run_tasks):
            answer = client.post(
                "/api/v1/server/events/",
                body,
                content_type="application/json",
                HTTP_X_FISSION_KEY=raw.rsplit("_", 1)[0],
                HTTP_X_FISSION_TIMESTAMP=str(ts),
                HTTP_X_FISSION_SIGNATURE=sign(raw, ts, body),
            )
        assert answer.status_code == 200, answer.content
        return answer.json()

    return send


def server_event(campaign, who, name, event_id, **properties) -> dict:
    return {
        "id": event_id,
        "type": name,
        "openid": who.openid,
        "campaign": campaign.slug,
        "time": timezone.now().isoformat(),
        "properties": properties,
    }


# --- refunds, whichever comes first ----------------------------------------------------
@pytest.mark.django_db
def test_a_refund_handled_before_its_order_paid_leaves_no_commission(live_campaign, sharer, invitee):
    commission(live_campaign)
    joined(live_campaign, sharer, invitee)
    assert reward_triggers.rewards_refund_order(campaign_id=live_campaign.pk, order_id="SO-1") == {
        "voided": 0,
        "clawed_back": 0,
    }
    late = reward_triggers.rewards_for_order(
        campaign_id=live_campaign.pk, buyer_id=invitee.pk, order_id="SO-1", amount=Decimal("100.00")
    )
    assert late == [] and not Reward.objects.exists()
    # another order of the same buyer still earns
    [reward] = reward_triggers.rewards_for_order(
        campaign_id=live_campaign.pk, buyer_id=invitee.pk, order_id="SO-2", amount=Decimal("100.00")
    )
    assert reward.amount == Decimal("10.00")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_order_paid_racing_its_refund_never_leaves_a_commission_standing(live_campaign, sharer, invitee):
    commission(live_campaign)
    joined(live_campaign, sharer, invitee)
    orders = [f"RACE-{i}" for i in range(20)]
    errors = []

    def run(fn, **kwargs):
        try:
            fn(**kwargs)
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    for order_id in orders:
        barrier = threading.Barrier(2)

        def paid(order_id=order_id, barrier=barrier):
            barrier.wait()
            reward_triggers.rewards_for_order(
                campaign_id=live_campaign.pk, buyer_id=invitee.pk, order_id=order_id, amount=Decimal("50.00")
            )

        def refunded(order_id=order_id, barrier=barrier):
            barrier.wait()
            reward_triggers.rewards_refund_order(campaign_id=live_campaign.pk, order_id=order_id)

        threads = [threading.Thread(target=run, args=(f,)) for f in (paid, refunded)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    standing = Reward.objects.filter(source__startswith="order:RACE-").exclude(status=Reward.Status.VOIDED)
    assert list(standing) == []
    assert RefundedOrder.objects.filter(order_id__startswith="RACE-").count() == 20
    live_campaign.refresh_from_db()
    assert live_campaign.budget_reserved == 0


@pytest.mark.django_db
def test_a_commission_below_ten_fen_is_not_granted(live_campaign, sharer, invitee):
    commission(live_campaign, name="1%")
    RewardRule.objects.update(percent=Decimal("1"))
    joined(live_campaign, sharer, invitee)
    small = reward_triggers.rewards_for_order(
        campaign_id=live_campaign.pk, buyer_id=invitee.pk, order_id="S", amount=Decimal("9.99")
    )
    assert small == [] and not Reward.objects.exists()
    [ok] = reward_triggers.rewards_for_order(
        campaign_id=live_campaign.pk, buyer_id=invitee.pk, order_id="M", amount=Decimal("10.00")
    )
    assert ok.amount == Decimal("0.10")


# --- caps ----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_rejected_reward_gives_its_caps_back(live_campaign, sharer):
    capped = rule(live_campaign, cap_per_participant=1)
    first, _ = rewards.reward_grant(rule=capped, beneficiary_id=sharer.pk, source="a")
    with pytest.raises(rewards.Refused):
        rewards.reward_grant(rule=capped, beneficiary_id=sharer.pk, source="b")
    rewards.reward_move(reward_id=first.pk, to=Reward.Status.REJECTED)
    second, created = rewards.reward_grant(rule=capped, beneficiary_id=sharer.pk, source="b")
    assert created and second.status == Reward.Status.HELD


@pytest.mark.django_db
def test_the_daily_allowance_is_one_across_campaigns_whatever_their_time_zones(
    make_campaign, sharer, settings
):
    settings.FISSION_DAILY_ALLOWANCE_PER_PARTICIPANT = Decimal("8.00")
    east = make_campaign(slug="east", status="live", time_zone="Pacific/Kiritimati")  # UTC+14
    west = make_campaign(slug="west", status="live", time_zone="Pacific/Pago_Pago")  # UTC-11
    rewards.reward_grant(rule=rule(east), beneficiary_id=sharer.pk, source="e")
    with pytest.raises(rewards.Refused) as refused:
        rewards.reward_grant(rule=rule(west), beneficiary_id=sharer.pk, source="w")
    assert refused.value.code == "cap_reached"


# --- events: triggers and releases ---------------------------------------------------------
@pytest.mark.django_db
def test_a_hold_bound_to_an_event_is_released_by_that_event(live_campaign, sharer, invitee, report):
    bound = rule(live_campaign, release_event="active_day7")
    referral = joined(live_campaign, sharer, invitee)
    Referral.objects.filter(pk=referral.pk).update(status="valid", valid_at=timezone.now())
    [reward] = reward_triggers.rewards_for_referral(referral_id=referral.pk, trigger="invitee_valid")
    assert (reward.rule, reward.payable_at, reward.hold_reason) == (bound, None, "until active_day7")
    # another participant's day 7, or another event, releases nothing
    report([server_event(live_campaign, sharer, "active_day7", "d7-sharer")])
    report([server_event(live_campaign, invitee, "active_day6", "d6")])
    reward.refresh_from_db()
    assert reward.payable_at is None
    report([server_event(live_campaign, invitee, "active_day7", "d7")])
    reward.refresh_from_db()
    assert reward.payable_at is not None and reward.payable_at <= timezone.now()
    assert reward.release_key == ""


@pytest.mark.django_db
def test_an_order_commission_waits_for_the_refund_window_to_close(live_campaign, sharer, invitee, report):
    commission(live_campaign, release_event="refund_window_closed")
    joined(live_campaign, sharer, invitee)
    [reward] = reward_triggers.rewards_for_order(
        campaign_id=live_campaign.pk, buyer_id=invitee.pk, order_id="SO-7", amount=Decimal("80.00")
    )
    assert reward.payable_at is None
    report([server_event(live_campaign, invitee, "refund_window_closed", "w-6", order_id="SO-6")])
    reward.refresh_from_db()
    assert reward.payable_at is None
    report([server_event(live_campaign, invitee, "refund_window_closed", "w-7", order_id="SO-7")])
    reward.refresh_from_db()
    assert reward.payable_at is not None


@pytest.mark.django_db
def test_a_server_event_named_by_a_rule_rewards_the_inviter_once(
    live_campaign, sharer, invitee, report, eager_tasks
):
    first_purchase = rule(live_campaign, trigger=R.Trigger.EVENT, trigger_event="first_purchase")
    joined(live_campaign, sharer, invitee)
    report([server_event(live_campaign, invitee, "first_purchase", "fp-1")])
    report([server_event(live_campaign, invitee, "first_purchase", "fp-1")])  # retried
    report([server_event(live_campaign, invitee, "page_view", "pv-1")])
    [reward] = Reward.objects.all()
    assert (reward.rule, reward.beneficiary, reward.amount) == (first_purchase, sharer, Decimal("5.00"))


@pytest.mark.django_db
def test_the_mechanics_hook_rewards_the_participant_once_per_act(live_campaign, sharer, invitee):
    own = rule(live_campaign, trigger=R.Trigger.GROUP_COMPLETED, beneficiary=R.Beneficiary.INVITEE)
    inviters = rule(live_campaign, name="inviter", trigger=R.Trigger.GROUP_COMPLETED)
    joined(live_campaign, sharer, invitee)
    for _ in range(2):  # a redelivered "group 77 completed"
        reward_triggers.rewards_for_act(
            campaign_id=live_campaign.pk,
            participant_id=invitee.pk,
            trigger="group_completed",
            source="group:77",
        )
    got = list(Reward.objects.values_list("beneficiary_id", "rule_id", "source"))
    assert sorted(got) == sorted([(invitee.pk, own.pk, "group:77"), (sharer.pk, inviters.pk, "group:77")])


# --- the sweeper ---------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_sweeper_grants_what_a_lost_task_never_did(live_campaign, sharer, invitee, eager_tasks):
    rule(live_campaign)
    referral = joined(live_campaign, sharer, invitee)  # on_commit never runs here: the task is "lost"
    valid_at = timezone.now() - timedelta(minutes=10)
    Referral.objects.filter(pk=referral.pk).update(status="valid", valid_at=valid_at)
    assert not Reward.objects.exists()
    sent = reward_triggers.rewards_sweep()
    assert sent["invitee_valid"] == 1
    [reward] = Reward.objects.all()
    assert (reward.beneficiary, reward.source) == (sharer, f"referral:{referral.pk}:invitee_valid")
    assert reward_triggers.rewards_sweep()["invitee_valid"] == 0  # granted: not sent again


@pytest.mark.django_db
def test_the_sweeper_re_derives_commissions_from_the_event_log(
    live_campaign, sharer, invitee, report, eager_tasks
):
    commission(live_campaign)
    joined(live_campaign, sharer, invitee)
    paid = server_event(live_campaign, invitee, "order_paid", "o-1", order_id="SO-5", amount="30.00")
    report([paid], run_tasks=False)  # the order task is "lost": it never runs
    assert not Reward.objects.exists()
    sent = reward_triggers.rewards_sweep(now=timezone.now() + timedelta(minutes=5))
    assert sent["order_paid"] == 1
    [reward] = Reward.objects.all()
    assert (reward.source, reward.amount) == ("order:SO-5", Decimal("3.00"))
    assert reward_triggers.rewards_sweep(now=timezone.now() + timedelta(minutes=5))["order_paid"] == 0


# --- coupons -------------------------------------------------------------------------------
@pytest.mark.django_db
def test_coupon_rewards_take_codes_from_the_bank_until_it_is_empty(live_campaign, make_participant):
    coupons = rule(live_campaign, kind=R.Kind.COUPON, amount=Decimal("20.00"))
    CouponCode.objects.bulk_create(CouponCode(rule=coupons, code=c) for c in ("AAA-1", "AAA-2"))
    people = [make_participant() for _ in range(3)]
    got = []
    for person in people[:2]:
        reward, _ = rewards.reward_grant(rule=coupons, beneficiary_id=person.pk, source="x")
        got.append(reward.coupon.code)
    assert sorted(got) == ["AAA-1", "AAA-2"]
    with pytest.raises(rewards.Refused) as refused:
        rewards.reward_grant(rule=coupons, beneficiary_id=people[2].pk, source="x")
    assert refused.value.code == "coupons_used_up"
    assert Reward.objects.count() == 2  # the refused grant wrote nothing


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_coupon_grants_never_share_a_code(live_campaign, make_participant):
    coupons = rule(live_campaign, kind=R.Kind.COUPON, amount=Decimal("20.00"))
    CouponCode.objects.bulk_create(CouponCode(rule=coupons, code=f"C{i}") for i in range(5))
    people = [make_participant() for _ in range(12)]
    barrier = threading.Barrier(len(people))
    outcomes = []

    def grant(person):
        barrier.wait()
        try:
            rewards.reward_grant(rule=coupons, beneficiary_id=person.pk, source="x")
            outcomes.append("ok")
        except rewards.Refused as refused:
            outcomes.append(refused.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=grant, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 5 and outcomes.count("coupons_used_up") == 7
    assert CouponCode.objects.filter(reward__isnull=False).count() == 5
    assert Reward.objects.count() == 5


@pytest.mark.django_db
def test_a_reward_whose_event_never_comes_expires_and_releases_its_budget(
    live_campaign, sharer, invitee, settings
):
    settings.FISSION_REWARD_EVENT_WAIT_DAYS = 30
    rule(live_campaign, release_event="active_day7", cap_per_participant=1)
    referral = joined(live_campaign, sharer, invitee)
    Referral.objects.filter(pk=referral.pk).update(status="valid", valid_at=timezone.now())
    [reward] = reward_triggers.rewards_for_referral(referral_id=referral.pk, trigger="invitee_valid")
    live_campaign.refresh_from_db()
    assert live_campaign.budget_reserved == Decimal("5.00")
    assert reward_triggers.rewards_expire(now=timezone.now() + timedelta(days=29)) == 0
    assert reward_triggers.rewards_expire(now=timezone.now() + timedelta(days=31)) == 1
    assert reward_triggers.rewards_expire(now=timezone.now() + timedelta(days=31)) == 0
    reward.refresh_from_db()
    live_campaign.refresh_from_db()
    assert reward.status == Reward.Status.VOIDED and live_campaign.budget_reserved == 0
    assert "active_day7 did not come" in reward.transitions.last().note
    # the cap is given back with the budget
    _, created = rewards.reward_grant(rule=reward.rule, beneficiary_id=sharer.pk, source="another")
    assert created


# --- races found in review: each interleaving is forced with a pause at the risky point ---
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_refund_racing_the_payouts_success_still_claws_back(
    live_campaign, sharer, invitee, finance, monkeypatch
):
    from referrals import wechatpay
    from referrals.models import Payout
    from referrals.services import payouts

    commission(live_campaign, hold_hours=0)
    joined(live_campaign, sharer, invitee)
    [reward] = reward_triggers.rewards_for_order(
        campaign_id=live_campaign.pk, buyer_id=invitee.pk, order_id="X1", amount=Decimal("50.00")
    )
    rewards.reward_move(reward_id=reward.pk, to=Reward.Status.APPROVED)
    batch = payouts.payout_batch_create(by=finance[0], name="b")
    payout = batch.payouts.get()
    Payout.objects.filter(pk=payout.pk).update(status="sent")  # on its way to WeChat Pay
    refund_inside = threading.Event()
    log_info = reward_triggers.log.info

    def pause_inside_the_refund(message, *args):  # the refund found the reward in a payout
        log_info(message, *args)
        refund_inside.set()
        time.sleep(1.0)

    monkeypatch.setattr(reward_triggers.log, "info", pause_inside_the_refund)
    errors = []

    def run(fn):
        try:
            fn()
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    def refund():
        reward_triggers.rewards_refund_order(campaign_id=live_campaign.pk, order_id="X1")

    def success_callback():
        refund_inside.wait(5)
        result = wechatpay.TransferResult(
            payout.out_bill_no, "T1", "SUCCESS", payout.amount_fen, payout.openid
        )
        payouts._apply(payout.pk, result)

    threads = [threading.Thread(target=run, args=(f,)) for f in (refund, success_callback)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    reward.refresh_from_db()
    assert reward.status == Reward.Status.PAID
    assert Reward.objects.get(source=f"clawback:{reward.pk}").amount == -reward.amount


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_level_commissions_of_concurrent_orders_do_not_deadlock(
    make_campaign, make_participant, monkeypatch
):
    campaign = make_campaign(
        status="live", kind="distribution", level2_enabled=True, valid_event_name="first_order"
    )
    a, b, c = make_participant(), make_participant(), make_participant()
    joined(campaign, a, b)
    joined(campaign, b, c)
    commission(campaign, name="L1")
    commission(campaign, name="L2", level=2)
    grant = reward_triggers._grant
    first_granted = threading.Event()

    def pause_after_the_first_grant(rule, beneficiary, source, **kwargs):
        reward = grant(rule, beneficiary, source, **kwargs)
        if source == "order:O1" and not first_granted.is_set():
            first_granted.set()
            time.sleep(1.0)  # C's order: B's commission written, A's still to come
        return reward

    monkeypatch.setattr(reward_triggers, "_grant", pause_after_the_first_grant)
    errors = []

    def order(buyer, order_id, after_the_first):
        try:
            if after_the_first:
                first_granted.wait(5)
            reward_triggers.rewards_for_order(
                campaign_id=campaign.pk, buyer_id=buyer.pk, order_id=order_id, amount=Decimal("100.00")
            )
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=order, args=(c, "O1", False)),
        threading.Thread(target=order, args=(b, "O2", True)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    got = sorted(Reward.objects.values_list("source", "beneficiary_id"))
    assert got == sorted([("order:O1", b.pk), ("order:O1", a.pk), ("order:O2", a.pk)])


@pytest.mark.django_db
def test_a_release_event_does_not_lift_a_fraud_hold(live_campaign, sharer, invitee, report):
    rule(live_campaign, release_event="active_day7")
    referral = joined(live_campaign, sharer, invitee)
    Referral.objects.filter(pk=referral.pk).update(status="valid", valid_at=timezone.now())
    [reward] = reward_triggers.rewards_for_referral(referral_id=referral.pk, trigger="invitee_valid")
    rewards.reward_hold(reward_id=reward.pk, note="same device")
    report([server_event(live_campaign, invitee, "active_day7", "d7")])
    reward.refresh_from_db()
    assert reward.payable_at is not None  # the wait is over…
    assert reward.hold_reason == "fraud review"  # …but the reviewer's hold stays
    with pytest.raises(Exception) as refused:
        rewards.reward_move(reward_id=reward.pk, to=Reward.Status.APPROVED)
    assert getattr(refused.value, "code", "") == "reward_under_review"


@pytest.mark.django_db
def test_a_reward_granted_after_its_release_event_is_payable_at_once(live_campaign, sharer, invitee, report):
    from referrals.models import ReleaseEvent

    rule(live_campaign, release_event="active_day7")
    referral = joined(live_campaign, sharer, invitee)
    report([server_event(live_campaign, invitee, "active_day7", "d7")])  # before the grant ran
    report([server_event(live_campaign, invitee, "page_view", "pv")])  # no rule waits for this
    assert list(ReleaseEvent.objects.values_list("key", flat=True)) == [
        f"c{live_campaign.pk}:p{invitee.pk}:active_day7"
    ]
    Referral.objects.filter(pk=referral.pk).update(status="valid", valid_at=timezone.now())
    [reward] = reward_triggers.rewards_for_referral(referral_id=referral.pk, trigger="invitee_valid")
    assert reward.release_key == "" and reward.payable_at is not None
    # a reward that slipped between the two (granted as the event committed) is released hourly
    Reward.objects.filter(pk=reward.pk).update(
        release_key=f"c{live_campaign.pk}:p{invitee.pk}:active_day7", payable_at=None
    )
    assert reward_triggers.rewards_expire() == 0
    reward.refresh_from_db()
    assert reward.release_key == "" and reward.payable_at is not None and reward.status == Reward.Status.HELD
