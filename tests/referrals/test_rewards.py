"""Reward rules, the compliance check and the ledger, under real concurrency."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from campaigns import services as campaign_services
from campaigns.models import Campaign
from config.errors import ConflictError
from referrals.models import Reward, RewardCap, RewardRule
from referrals.services import attribution, compliance, reward_triggers, rewards
from tests.conftest import share_link_for

R = RewardRule


def rule(campaign, **fields) -> RewardRule:
    defaults = {
        "name": "Friend counts: ¥5",
        "trigger": R.Trigger.INVITEE_VALID,
        "kind": R.Kind.CASH,
        "amount_kind": R.AmountKind.FIXED,
        "amount": Decimal("5.00"),
        "hold_hours": 72,
    }
    return RewardRule.objects.create(campaign=campaign, **(defaults | fields))


def budget(campaign) -> tuple[Decimal, Decimal]:
    campaign.refresh_from_db()
    return campaign.budget_reserved, campaign.budget_spent


# --- compliance -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"trigger": R.Trigger.EVENT, "trigger_event": "share"}, "no_reward_for_sharing"),
        ({"trigger": R.Trigger.EVENT, "trigger_event": "share_timeline_done"}, "no_reward_for_sharing"),
        ({"level": 3, "trigger": R.Trigger.ORDER_PAID}, "at_most_two_levels"),
        ({"level": 2, "trigger": R.Trigger.ORDER_PAID}, "level2_needs_flag"),
        ({"level": 2, "trigger": R.Trigger.INVITEE_VALID}, "no_headcount_pay"),
        ({"amount_kind": R.AmountKind.RANDOM, "amount": None}, "random_needs_bounds"),
        (
            {"amount_kind": R.AmountKind.RANDOM, "amount_min": Decimal("5"), "amount_max": Decimal("1")},
            "random_needs_bounds",
        ),
        (
            {"amount_kind": R.AmountKind.PERCENT, "percent": Decimal("10"), "amount_cap": Decimal("9")},
            "percent_needs_orders",
        ),
        ({"amount": Decimal("0.05")}, "cash_bounds"),
        ({"amount": None}, "amount_needed"),
        ({"trigger": R.Trigger.MILESTONE, "milestone": None}, "milestone_needs_count"),
        ({"trigger": R.Trigger.INVITEE_JOINED}, "needs_deep_interaction"),
        ({"trigger": R.Trigger.GROUP_COMPLETED}, "trigger_needs_mechanic"),
        ({"trigger": R.Trigger.PRICE_CUT_COMPLETED}, "trigger_needs_mechanic"),
        ({"release_event": "shared_poster"}, "no_reward_for_sharing"),
        (
            {
                "trigger": R.Trigger.ORDER_PAID,
                "amount_kind": R.AmountKind.PERCENT,
                "percent": Decimal("10"),
                "amount_cap": Decimal("0.05"),
            },
            "cash_bounds",
        ),
    ],
)
def test_each_forbidden_configuration_is_refused_by_name(live_campaign, fields, code):
    findings = compliance.rule_findings(
        RewardRule(
            campaign=live_campaign,
            **(
                {
                    "name": "x",
                    "trigger": R.Trigger.INVITEE_VALID,
                    "kind": R.Kind.CASH,
                    "amount_kind": R.AmountKind.FIXED,
                    "amount": Decimal("5.00"),
                }
                | fields
            ),
        )
    )
    assert code in [f.code for f in findings if f.blocking]
    assert all(f.message for f in findings)


def test_level2_commission_is_allowed_with_the_flag_and_warned(make_campaign):
    campaign = make_campaign(kind=Campaign.Kind.DISTRIBUTION, level2_enabled=True)
    findings = compliance.rule_findings(
        RewardRule(
            campaign=campaign,
            name="L2",
            trigger=R.Trigger.ORDER_PAID,
            level=2,
            amount_kind=R.AmountKind.PERCENT,
            percent=Decimal("5"),
            amount_cap=Decimal("20"),
        )
    )
    assert [f.code for f in findings] == ["level2_warning"] and not findings[0].blocking


def test_a_clean_rule_passes_and_the_public_text_says_what_it_gives(live_campaign):
    rule(live_campaign, cap_per_participant=10)
    rule(live_campaign, name="Tier", trigger=R.Trigger.MILESTONE, milestone=3, amount=Decimal("20.00"))
    assert compliance.campaign_findings(live_campaign) == []
    text = compliance.campaign_rules_text_refresh(campaign_id=live_campaign.pk)
    assert (
        "You get ¥5.00 cash when a friend you invited counts (resume_completed with completeness ≥ 0.6)"
        in text
    )
    assert "at most 10 times" in text and "when 3 friends you invited count" in text
    assert text.endswith("Sharing by itself never earns a reward.")
    live_campaign.refresh_from_db()
    assert live_campaign.reward_rules_text == text


def test_the_public_text_says_who_acts_for_rules_on_ones_own_acts(live_campaign):
    rule(
        live_campaign, name="Own", trigger=R.Trigger.EVENT, trigger_event="checked_in", beneficiary="invitee"
    )
    rule(
        live_campaign,
        name="Theirs",
        trigger=R.Trigger.EVENT,
        trigger_event="course_done",
        amount=Decimal("2"),
    )
    rule(live_campaign, name="Group", trigger=R.Trigger.GROUP_COMPLETED, beneficiary="invitee")
    text = compliance.rules_text(live_campaign)
    assert "You get ¥5.00 cash on “checked_in”" in text  # the one who checked in, not "the friend"
    assert "You get ¥2.00 cash when a friend you invited sends “course_done”" in text
    assert "You get ¥5.00 cash when your group is complete" in text
    assert "The friend you invited gets" not in text


def test_launch_is_refused_while_a_rule_breaks_the_platform_rules(make_campaign, ops):
    campaign = make_campaign()
    rule(campaign, name="Pay for shares", trigger=R.Trigger.EVENT, trigger_event="share")
    with pytest.raises(ConflictError) as refused:
        campaign_services.campaign_launch(campaign_id=campaign.pk, by=ops)
    assert refused.value.code == "campaign_not_compliant"
    assert "Pay for shares" in refused.value.message and "no_reward_for_sharing" in refused.value.message
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT and campaign.transitions.count() == 0


# --- granting ---------------------------------------------------------------------------
def test_grant_holds_cash_reserves_budget_and_a_redelivery_grants_nothing_more(live_campaign, sharer):
    r = rule(live_campaign)
    for _ in range(10):  # the same event delivered ten times
        reward, _ = rewards.reward_grant(rule=r, beneficiary_id=sharer.pk, source="referral:1:invitee_valid")
    assert Reward.objects.count() == 1
    assert reward.status == Reward.Status.HELD and reward.hold_reason == "review hold"
    assert reward.payable_at - reward.created_at == pytest.approx(
        timedelta(hours=72), abs=timedelta(seconds=5)
    )
    assert budget(live_campaign) == (Decimal("5.00"), Decimal("0.00"))


def test_random_amounts_stay_inside_their_published_bounds_in_whole_fen(live_campaign, sharer):
    r = rule(
        live_campaign,
        amount_kind=R.AmountKind.RANDOM,
        amount=None,
        amount_min=Decimal("0.88"),
        amount_max=Decimal("1.20"),
    )
    amounts = {rewards.reward_amount(r) for _ in range(300)}
    assert min(amounts) >= Decimal("0.88") and max(amounts) <= Decimal("1.20") and len(amounts) > 10
    assert all(a == a.quantize(Decimal("0.01")) for a in amounts)


def test_commission_is_a_percent_of_the_order_with_a_cap(live_campaign):
    r = rule(
        live_campaign,
        trigger=R.Trigger.ORDER_PAID,
        amount_kind=R.AmountKind.PERCENT,
        amount=None,
        percent=Decimal("10"),
        amount_cap=Decimal("8.00"),
    )
    assert rewards.reward_amount(r, order_amount=Decimal("59.00")) == Decimal("5.90")
    assert rewards.reward_amount(r, order_amount=Decimal("599.99")) == Decimal("8.00")


def test_budget_exhausted_grants_nothing(live_campaign, sharer):
    Campaign.objects.filter(pk=live_campaign.pk).update(budget_total=Decimal("7.00"))
    r = rule(live_campaign)
    rewards.reward_grant(rule=r, beneficiary_id=sharer.pk, source="a")
    with pytest.raises(rewards.Refused) as refused:
        rewards.reward_grant(rule=r, beneficiary_id=sharer.pk, source="b")
    assert refused.value.code == "budget_exhausted"
    assert Reward.objects.count() == 1 and budget(live_campaign) == (Decimal("5.00"), Decimal("0.00"))
    # and a refused grant took no cap either
    assert RewardCap.objects.filter(key__startswith=f"g:p{sharer.pk}").get().used == Decimal("5.00")


def test_ledger_moves_release_or_spend_the_budget_and_refuse_illegal_ones(live_campaign, sharer, ops):
    r = rule(live_campaign)
    a, _ = rewards.reward_grant(rule=r, beneficiary_id=sharer.pk, source="a")
    b, _ = rewards.reward_grant(rule=r, beneficiary_id=sharer.pk, source="b")
    rewards.reward_move(reward_id=a.pk, to=Reward.Status.REJECTED, by=ops)
    rewards.reward_move(reward_id=a.pk, to=Reward.Status.REJECTED, by=ops)  # twice: once
    rewards.reward_move(reward_id=b.pk, to=Reward.Status.APPROVED, by=ops)
    rewards.reward_move(reward_id=b.pk, to=Reward.Status.PAID, by=ops)
    assert budget(live_campaign) == (Decimal("0.00"), Decimal("5.00"))
    with pytest.raises(ConflictError):
        rewards.reward_move(reward_id=a.pk, to=Reward.Status.APPROVED, by=ops)
    assert budget(live_campaign) == (Decimal("0.00"), Decimal("5.00"))
    a.refresh_from_db()
    assert a.status == Reward.Status.REJECTED
    assert [t.to_status for t in a.transitions.all()] == [
        "held",
        "rejected",
    ] and a.transitions.last().by == ops


# --- triggers -------------------------------------------------------------------------------
def test_join_valid_and_milestone_grant_to_the_right_people_once(live_campaign, sharer, make_participant):
    joined_rule = rule(
        live_campaign,
        name="Welcome",
        trigger=R.Trigger.INVITEE_JOINED,
        beneficiary=R.Beneficiary.INVITEE,
        kind=R.Kind.POINTS,
        amount=None,
        points=50,
    )
    valid_rule = rule(live_campaign)
    tier = rule(
        live_campaign, name="Tier 2", trigger=R.Trigger.MILESTONE, milestone=2, amount=Decimal("20.00")
    )
    code = share_link_for(live_campaign, sharer).code
    friends = [make_participant() for _ in range(3)]
    for friend in friends:
        edge = attribution.campaign_join(campaign=live_campaign, participant=friend, code=code)["referral"]
        reward_triggers.rewards_for_referral(referral_id=edge.pk, trigger="invitee_joined")
        attribution.referral_mark_valid(
            campaign=live_campaign,
            participant_id=friend.pk,
            event_name="resume_completed",
            occurred_at=timezone.now(),
        )
        reward_triggers.rewards_for_referral(referral_id=edge.pk, trigger="invitee_valid")
        reward_triggers.rewards_for_referral(referral_id=edge.pk, trigger="invitee_valid")  # redelivered
    assert Reward.objects.filter(rule=joined_rule).count() == 3
    assert set(Reward.objects.filter(rule=joined_rule).values_list("beneficiary", flat=True)) == {
        f.pk for f in friends
    }
    assert Reward.objects.filter(rule=valid_rule, beneficiary=sharer).count() == 3
    assert Reward.objects.filter(rule=tier, beneficiary=sharer).count() == 1  # once, at the 2nd valid friend
    assert budget(live_campaign)[0] == Decimal("35.00")  # 3 × ¥5 + ¥20; points cost no budget


def test_valid_mark_enqueues_the_reward_task_after_commit(
    live_campaign, sharer, invitee, django_capture_on_commit_callbacks
):
    code = share_link_for(live_campaign, sharer).code
    with django_capture_on_commit_callbacks() as joined:
        attribution.campaign_join(campaign=live_campaign, participant=invitee, code=code)
    with django_capture_on_commit_callbacks() as validated:
        attribution.referral_mark_valid(
            campaign=live_campaign,
            participant_id=invitee.pk,
            event_name="resume_completed",
            occurred_at=timezone.now(),
        )
    assert len(joined) == 1 and len(validated) == 1


# --- concurrency ------------------------------------------------------------------------------
def run_together(n_threads: int, work) -> list:
    barrier = threading.Barrier(n_threads)
    results = []
    lock = threading.Lock()

    def go(i):
        try:
            barrier.wait()
            outcome = work(i)
        except rewards.Refused as refused:
            outcome = refused.code
        except Exception as exc:  # pragma: no cover - shown by the asserts
            outcome = exc
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_budget_race_never_overspends(make_campaign, make_participant):
    # given a ¥100 budget and 240 grants of ¥3 from 80 connections at once (3 each)
    campaign = make_campaign(status=Campaign.Status.LIVE, budget_total=Decimal("100.00"))
    r = rule(campaign, amount=Decimal("3.00"))
    people = [make_participant() for _ in range(240)]

    outcomes = run_together(80, lambda i: _grant_three(r, people, i))
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert errors == []
    # then the granted total stays within the budget, and within one reward of it
    granted = sum(Reward.objects.filter(campaign=campaign).values_list("amount", flat=True), Decimal("0"))
    reserved, spent = budget(campaign)
    assert reserved == granted and spent == Decimal("0.00")
    assert Decimal("100.00") - Decimal("3.00") < granted <= Decimal("100.00")
    assert Reward.objects.filter(campaign=campaign).count() == 33


def _grant_three(r, people, i):
    outcomes = []
    for k in range(3):
        try:
            outcomes.append(
                rewards.reward_grant(rule=r, beneficiary_id=people[i * 3 + k].pk, source=f"s{i}-{k}")[1]
            )
        except rewards.Refused as refused:
            outcomes.append(refused.code)
    return outcomes


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_participants_cap_holds_under_100_parallel_claims(make_campaign, make_participant):
    campaign = make_campaign(status=Campaign.Status.LIVE, budget_total=Decimal("10000.00"))
    r = rule(campaign, cap_per_participant=7)
    claimer = make_participant()
    outcomes = run_together(50, lambda i: [_claim(r, claimer, f"claim-{i}-{k}") for k in range(2)])
    flat = [o for pair in outcomes for o in pair]
    assert flat.count(True) == 7 and flat.count("cap_reached") == 93
    assert Reward.objects.filter(beneficiary=claimer).count() == 7
    assert budget(campaign)[0] == Decimal("35.00")


def _claim(r, claimer, source):
    try:
        return rewards.reward_grant(rule=r, beneficiary_id=claimer.pk, source=source)[1]
    except rewards.Refused as refused:
        return refused.code


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_same_event_delivered_ten_times_at_once_grants_once(make_campaign, make_participant):
    campaign = make_campaign(status=Campaign.Status.LIVE)
    r = rule(campaign)
    person = make_participant()
    outcomes = run_together(
        10,
        lambda i: rewards.reward_grant(rule=r, beneficiary_id=person.pk, source="referral:9:invitee_valid")[
            1
        ],
    )
    assert sorted(outcomes) == [False] * 9 + [True]
    assert Reward.objects.count() == 1 and budget(campaign)[0] == Decimal("5.00")


# --- API and admin ----------------------------------------------------------------------------
def test_my_rewards_shows_only_mine_with_why_held_and_when_payable(api_as, live_campaign, sharer, invitee):
    rewards.reward_grant(rule=rule(live_campaign), beneficiary_id=sharer.pk, source="a")
    body = api_as(sharer).get("/api/v1/me/rewards/").json()
    assert body["count"] == 1
    [item] = body["results"]
    assert (item["status"], item["amount"], item["why_held"], item["campaign"]) == (
        "held",
        "5.00",
        "review hold",
        live_campaign.slug,
    )
    assert item["payable_at"]
    assert api_as(invitee).get("/api/v1/me/rewards/").json()["count"] == 0


def test_admin_refuses_a_non_compliant_rule_with_its_name(admin_client, live_campaign):
    from django.urls import reverse

    url = reverse("admin:campaigns_campaign_change", args=[live_campaign.pk])
    page = admin_client.get(url)
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and not isinstance(v, list)}
    data.update(
        {
            "starts_at_0": timezone.localtime(live_campaign.starts_at).strftime("%Y-%m-%d"),
            "starts_at_1": timezone.localtime(live_campaign.starts_at).strftime("%H:%M:%S"),
            "ends_at_0": timezone.localtime(live_campaign.ends_at).strftime("%Y-%m-%d"),
            "ends_at_1": timezone.localtime(live_campaign.ends_at).strftime("%H:%M:%S"),
            "owner": "",
            "budget_daily": "",
            "valid_within_hours": "",
            "invite_target": "3",
            **{
                f"{p}-{k}": v
                for p in ("channels", "templates", "transitions")
                for k, v in {"TOTAL_FORMS": "0", "INITIAL_FORMS": "0"}.items()
            },
            "reward_rules-TOTAL_FORMS": "1",
            "reward_rules-INITIAL_FORMS": "0",
            "reward_rules-0-name": "Pay per share",
            "reward_rules-0-is_active": "on",
            "reward_rules-0-trigger": "event",
            "reward_rules-0-trigger_event": "share",
            "reward_rules-0-beneficiary": "inviter",
            "reward_rules-0-level": "1",
            "reward_rules-0-kind": "cash",
            "reward_rules-0-amount_kind": "fixed",
            "reward_rules-0-amount": "1.00",
            "reward_rules-0-hold_hours": "72",
        }
    )
    response = admin_client.post(url, data)
    assert response.status_code == 200  # the form comes back with the error
    assert "no_reward_for_sharing" in response.content.decode()
    assert RewardRule.objects.count() == 0


def test_reward_admin_bulk_approve_reports_counts_and_refusals(admin_client, live_campaign, sharer):
    from django.contrib.messages import get_messages
    from django.urls import reverse

    r = rule(live_campaign)
    held, _ = rewards.reward_grant(rule=r, beneficiary_id=sharer.pk, source="a")
    rejected, _ = rewards.reward_grant(rule=r, beneficiary_id=sharer.pk, source="b")
    rewards.reward_move(reward_id=rejected.pk, to=Reward.Status.REJECTED)
    response = admin_client.post(
        reverse("admin:referrals_reward_changelist"),
        {"action": "approve", "_selected_action": [held.pk, rejected.pk]},
        follow=True,
    )
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("Approved: 1 reward(s)" in t for t in texts) and any("1 refused" in t for t in texts), texts
    held.refresh_from_db()
    assert held.status == Reward.Status.APPROVED
    assert admin_client.get(reverse("admin:referrals_reward_changelist")).status_code == 200


@pytest.mark.parametrize(
    ("group", "can_edit_rules", "can_approve", "can_hold"),
    [
        ("Campaign managers", True, False, False),
        ("Finance approvers", False, True, False),
        ("Fraud reviewers", False, False, True),
        ("Analysts", False, False, False),
    ],
)
def test_roles(db, group, can_edit_rules, can_approve, can_hold):
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user(f"u-{group}", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    assert user.has_perm("referrals.change_rewardrule") is can_edit_rules
    assert user.has_perm("referrals.approve_reward") is can_approve
    assert user.has_perm("referrals.change_payoutbatch") is can_approve
    assert user.has_perm("referrals.hold_reward") is can_hold
    assert not user.has_perm("referrals.change_reward")  # nobody edits a reward's amount
    assert user.has_perm("referrals.view_reward")


# --- orders: commissions and refunds ------------------------------------------------------------
def test_order_paid_then_refunded_through_the_server_api(
    client, live_campaign, sharer, invitee, eager_tasks, django_capture_on_commit_callbacks
):
    import time as time_module

    import orjson

    from referrals.api.auth import sign
    from referrals.models import ApiKey

    commission = rule(
        live_campaign,
        name="10% commission",
        trigger=R.Trigger.ORDER_PAID,
        amount_kind=R.AmountKind.PERCENT,
        amount=None,
        percent=Decimal("10"),
        amount_cap=Decimal("50.00"),
    )
    code = share_link_for(live_campaign, sharer).code
    attribution.campaign_join(campaign=live_campaign, participant=invitee, code=code)
    raw, prefix, salt, digest = ApiKey.generate()
    ApiKey.objects.create(name="Shop", prefix=prefix, salt=salt, key_hash=digest)

    def report(events):
        body = orjson.dumps({"events": events})
        ts = int(time_module.time())
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                "/api/v1/server/events/",
                body,
                content_type="application/json",
                HTTP_X_FISSION_KEY=raw.rsplit("_", 1)[0],
                HTTP_X_FISSION_TIMESTAMP=str(ts),
                HTTP_X_FISSION_SIGNATURE=sign(raw, ts, body),
            )

    now = timezone.now().isoformat()
    paid = {
        "id": "o-1-paid",
        "type": "order_paid",
        "openid": invitee.openid,
        "campaign": live_campaign.slug,
        "time": now,
        "properties": {"order_id": "SO-1", "amount": "59.00"},
    }
    assert report([paid]).status_code == 200
    assert report([paid | {"id": "o-1-paid-again"}]).status_code == 200  # re-sent under another id
    reward = Reward.objects.get(rule=commission)
    assert (reward.beneficiary, reward.amount, reward.source) == (sharer, Decimal("5.90"), "order:SO-1")
    # paid out, then the order is refunded: the paid row stays, a clawback entry is added
    rewards.reward_move(reward_id=reward.pk, to=Reward.Status.APPROVED)
    rewards.reward_move(reward_id=reward.pk, to=Reward.Status.PAID)
    refund = {
        "id": "o-1-refund",
        "type": "order_refunded",
        "openid": invitee.openid,
        "campaign": live_campaign.slug,
        "time": now,
        "properties": {"order_id": "SO-1"},
    }
    report([refund])
    report([refund | {"id": "o-1-refund-again"}])
    reward.refresh_from_db()
    assert reward.status == Reward.Status.PAID and reward.amount == Decimal("5.90")
    [clawback] = Reward.objects.filter(source=f"clawback:{reward.pk}")
    assert clawback.amount == Decimal("-5.90") and clawback.status == Reward.Status.CLAWED_BACK


def test_refund_before_payout_voids_and_releases_the_budget(live_campaign, sharer, invitee):
    rule(
        live_campaign,
        trigger=R.Trigger.ORDER_PAID,
        amount_kind=R.AmountKind.PERCENT,
        amount=None,
        percent=Decimal("10"),
        amount_cap=Decimal("50.00"),
    )
    code = share_link_for(live_campaign, sharer).code
    attribution.campaign_join(campaign=live_campaign, participant=invitee, code=code)
    [reward] = reward_triggers.rewards_for_order(
        campaign_id=live_campaign.pk, buyer_id=invitee.pk, order_id="SO-2", amount=Decimal("200.00")
    )
    assert budget(live_campaign) == (Decimal("20.00"), Decimal("0.00"))
    assert reward_triggers.rewards_refund_order(campaign_id=live_campaign.pk, order_id="SO-2") == {
        "voided": 1,
        "clawed_back": 0,
    }
    assert reward_triggers.rewards_refund_order(campaign_id=live_campaign.pk, order_id="SO-2") == {
        "voided": 0,
        "clawed_back": 0,
    }
    reward.refresh_from_db()
    assert reward.status == Reward.Status.VOIDED and budget(live_campaign) == (
        Decimal("0.00"),
        Decimal("0.00"),
    )


def test_an_order_by_a_root_participant_pays_no_commission(live_campaign, sharer):
    rule(
        live_campaign,
        trigger=R.Trigger.ORDER_PAID,
        amount_kind=R.AmountKind.PERCENT,
        amount=None,
        percent=Decimal("10"),
        amount_cap=Decimal("50.00"),
    )
    attribution.campaign_join(campaign=live_campaign, participant=sharer)
    assert (
        reward_triggers.rewards_for_order(
            campaign_id=live_campaign.pk, buyer_id=sharer.pk, order_id="SO-3", amount=Decimal("10.00")
        )
        == []
    )
