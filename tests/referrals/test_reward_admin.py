"""Compliance at every door (rule saved on the add page, campaign started by the scheduler),
the coupon bank upload, and the reward admin's payout filters."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django.utils import timezone

from campaigns import services as campaign_services
from campaigns.models import Campaign
from referrals.models import CouponCode, Reward, RewardRule
from referrals.services import compliance, rewards

pytestmark = pytest.mark.django_db
R = RewardRule


def findings(campaign, **fields):
    probe = RewardRule(
        campaign=campaign,
        **(
            {
                "name": "x",
                "kind": "cash",
                "amount_kind": "fixed",
                "amount": Decimal("5.00"),
                "trigger": "invitee_valid",
            }
            | fields
        ),
    )
    return [f.code for f in compliance.rule_findings(probe, campaign) if f.blocking]


def test_an_inviter_is_not_paid_for_a_bare_join_but_a_newcomer_gift_is_fine(make_campaign):
    bare = make_campaign(valid_event_name="join")
    assert "needs_deep_interaction" in findings(bare)  # "valid" = joined: pay per head
    assert "needs_deep_interaction" in findings(bare, trigger="milestone", milestone=3)
    assert findings(bare, beneficiary="invitee") == []  # the newcomer's own welcome gift
    assert findings(bare, trigger="invitee_joined", beneficiary="invitee") == []
    deep = make_campaign(valid_event_name="first_order")
    assert findings(deep) == []


def test_group_and_price_cut_triggers_belong_to_their_mechanics(make_campaign):
    assert findings(make_campaign(kind=Campaign.Kind.GROUP_BUY), trigger="group_completed") == []
    assert findings(make_campaign(kind=Campaign.Kind.PRICE_CUT), trigger="price_cut_completed") == []


def test_a_coupon_rule_cannot_launch_with_an_empty_bank(make_campaign, ops):
    campaign = make_campaign(valid_event_name="first_order")
    coupons = RewardRule.objects.create(
        campaign=campaign, name="¥20 coupon", kind="coupon", amount=Decimal("20.00")
    )
    assert "coupon_codes_needed" in " ".join(compliance.campaign_findings(campaign))
    CouponCode.objects.create(rule=coupons, code="X1")
    assert compliance.campaign_findings(campaign) == []
    assert campaign_services.campaign_launch(campaign_id=campaign.pk, by=ops).status == "live"


def test_the_scheduler_does_not_start_a_campaign_that_fails_its_checks(make_campaign):
    now = timezone.now()
    campaign = make_campaign(
        status="scheduled", starts_at=now - timedelta(minutes=1), valid_event_name="join"
    )
    RewardRule.objects.create(campaign=campaign, name="Per head", amount=Decimal("5.00"))
    result = campaign_services.campaigns_sync_schedule(now=now)
    assert result["refused"] == [campaign.pk] and result["started"] == []
    campaign.refresh_from_db()
    assert campaign.status == "draft"
    note = campaign.transitions.get().note
    assert note.startswith("not started:") and "needs_deep_interaction" in note


def test_the_add_page_checks_rules_too(admin_client):
    url = reverse("admin:campaigns_campaign_add")
    form = admin_client.get(url).context["adminform"].form
    start = timezone.localtime() + timedelta(days=1)
    end = start + timedelta(days=10)
    defaults = {name: field.initial for name, field in form.fields.items()} | form.initial
    data = {
        k: v for k, v in defaults.items() if v is not None and not callable(v) and not isinstance(v, list)
    }
    data.update(
        {
            "name": "New",
            "slug": "new",
            "kind": "referral",
            "starts_at_0": start.strftime("%Y-%m-%d"),
            "starts_at_1": start.strftime("%H:%M:%S"),
            "ends_at_0": end.strftime("%Y-%m-%d"),
            "ends_at_1": end.strftime("%H:%M:%S"),
            "goal_target": "1000",
            "budget_total": "100.00",
            "owner": "",
            "budget_daily": "",
            "valid_within_hours": "",
            "invite_target": "",
            **{
                f"{p}-{k}": v
                for p in ("channels", "templates", "transitions")
                for k, v in {"TOTAL_FORMS": "0", "INITIAL_FORMS": "0"}.items()
            },
            "reward_rules-TOTAL_FORMS": "1",
            "reward_rules-INITIAL_FORMS": "0",
            "reward_rules-0-name": "Per join",
            "reward_rules-0-is_active": "on",
            "reward_rules-0-trigger": "invitee_joined",
            "reward_rules-0-beneficiary": "inviter",
            "reward_rules-0-level": "1",
            "reward_rules-0-kind": "cash",
            "reward_rules-0-amount_kind": "fixed",
            "reward_rules-0-amount": "1.00",
            "reward_rules-0-hold_hours": "72",
        }
    )
    response = admin_client.post(url, data)
    assert response.status_code == 200, response.get("Location")
    assert "needs_deep_interaction" in response.content.decode()
    assert not Campaign.objects.filter(slug="new").exists() and not RewardRule.objects.exists()


def test_ops_upload_a_coupon_bank_and_the_winner_sees_the_code(client, live_campaign, sharer, api_as):
    manager = User.objects.create_user("cm", password="pw-for-tests-only", is_staff=True)
    manager.groups.add(Group.objects.get(name="Campaign managers"))
    client.force_login(manager)
    coupons = RewardRule.objects.create(
        campaign=live_campaign, name="¥20 coupon", kind="coupon", amount=Decimal("20.00")
    )
    url = reverse("admin:referrals_couponcode_upload")
    bad = client.post(url, {"rule": coupons.pk, "codes": "code\nOK-1\nnot ok\n"})
    assert bad.status_code == 200 and "Line(s) 3" in bad.content.decode()
    assert not CouponCode.objects.exists()  # nothing half-added
    ok = client.post(url, {"rule": coupons.pk, "codes": "code\nOK-1\nOK-2\nOK-1\n"}, follow=True)
    assert "Added 2 code(s)" in ok.content.decode()
    again = client.post(url, {"rule": coupons.pk, "codes": "OK-2\nOK-3"}, follow=True)
    assert "Added 1 code(s) (1 already in the bank)" in again.content.decode()
    rewards.reward_grant(rule=coupons, beneficiary_id=sharer.pk, source="x")
    [item] = api_as(sharer).get("/api/v1/me/rewards/").json()["results"]
    assert (item["kind"], item["coupon_code"]) == ("coupon", "OK-1")
    # an analyst may look at the bank but not upload
    analyst = User.objects.create_user("an", is_staff=True)
    analyst.groups.add(Group.objects.get(name="Analysts"))
    client.force_login(analyst)
    assert client.get(reverse("admin:referrals_couponcode_changelist")).status_code == 200
    assert client.post(url, {"rule": coupons.pk, "codes": "Z"}).status_code == 403


def test_the_reward_list_filters_what_is_payable(admin_client, live_campaign, sharer):
    rule = RewardRule.objects.create(campaign=live_campaign, name="r", amount=Decimal("5.00"), hold_hours=0)
    held = RewardRule.objects.create(campaign=live_campaign, name="h", amount=Decimal("5.00"))
    payable, _ = rewards.reward_grant(rule=rule, beneficiary_id=sharer.pk, source="a")
    waiting, _ = rewards.reward_grant(rule=held, beneficiary_id=sharer.pk, source="b")
    for reward in (payable, waiting):
        rewards.reward_move(reward_id=reward.pk, to=Reward.Status.APPROVED)
    url = reverse("admin:referrals_reward_changelist")
    shown = admin_client.get(url, {"payout": "payable"}).context["cl"].result_list
    assert [r.pk for r in shown] == [payable.pk]
    shown = admin_client.get(url, {"payout": "waiting"}).context["cl"].result_list
    assert [r.pk for r in shown] == [waiting.pk]
    assert admin_client.get(url, {"payout": "failed"}).status_code == 200


def staff(group: str, name: str) -> User:
    user = User.objects.create_user(name, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


def test_fraud_reviewers_hold_and_release_and_finance_cannot_approve_a_held_reward(
    client, live_campaign, sharer
):
    from django.contrib.messages import get_messages

    rule = RewardRule.objects.create(campaign=live_campaign, name="r", amount=Decimal("5.00"), hold_hours=0)
    reward, _ = rewards.reward_grant(rule=rule, beneficiary_id=sharer.pk, source="a")
    url = reverse("admin:referrals_reward_changelist")
    reviewer, finance = staff("Fraud reviewers", "rita"), staff("Finance approvers", "fred")

    client.force_login(reviewer)
    actions = [name for name, _ in client.get(url).context["action_form"].fields["action"].choices]
    assert "hold" in actions and "release" in actions and "approve" not in actions
    client.post(url, {"action": "hold", "_selected_action": [reward.pk]})
    reward.refresh_from_db()
    assert (reward.status, reward.amount) == ("held", Decimal("5.00"))
    assert reward.hold_reason == "fraud review"
    refused = client.post(url, {"action": "approve", "_selected_action": [reward.pk]})
    reward.refresh_from_db()
    assert reward.status == "held"  # not theirs to approve
    assert refused.status_code in (200, 302)

    client.force_login(finance)
    actions = [name for name, _ in client.get(url).context["action_form"].fields["action"].choices]
    assert "approve" in actions and "hold" not in actions
    response = client.post(url, {"action": "approve", "_selected_action": [reward.pk]}, follow=True)
    assert any("fraud review" in str(m) for m in get_messages(response.wsgi_request))
    reward.refresh_from_db()
    assert reward.status == "held"

    client.force_login(reviewer)
    client.post(url, {"action": "release", "_selected_action": [reward.pk]})
    client.force_login(finance)
    client.post(url, {"action": "approve", "_selected_action": [reward.pk]})
    reward.refresh_from_db()
    assert (reward.status, reward.hold_reason) == ("approved", "")
    notes = list(reward.transitions.values_list("by__username", "note"))
    assert ("rita", "Held for review in the admin") in notes and ("fred", "Approved in the admin") in notes
    assert client.get(reverse("admin:referrals_payoutbatch_changelist")).status_code == 200


def test_a_held_for_review_approved_reward_leaves_no_payout_path(live_campaign, sharer, finance):
    from referrals.services import payouts

    rule = RewardRule.objects.create(campaign=live_campaign, name="r", amount=Decimal("5.00"), hold_hours=0)
    reward, _ = rewards.reward_grant(rule=rule, beneficiary_id=sharer.pk, source="a")
    rewards.reward_move(reward_id=reward.pk, to=Reward.Status.APPROVED)
    rewards.reward_hold(reward_id=reward.pk, note="same device as inviter")
    reward.refresh_from_db()
    assert (reward.status, reward.hold_reason) == ("held", "fraud review")
    assert reward.transitions.last().note == "same device as inviter"
    with pytest.raises(Exception) as nothing:
        payouts.payout_batch_create(by=finance[0], name="b")
    assert getattr(nothing.value, "code", "") == "payout_nothing_to_pay"
