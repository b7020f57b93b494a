"""Check-in is never conditioned on sharing: the plan form and the launch refuse it; the
admin pages load and the plan's action works."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from campaigns import services as campaign_services
from campaigns.models import Campaign
from config.errors import ConflictError
from mechanics.checkin import services
from mechanics.checkin.admin import CheckinPlanForm
from mechanics.checkin.models import Checkin, CheckinPlan, StreakTier
from referrals.models import RewardRule
from referrals.services.compliance import campaign_rules_text_refresh

from .conftest import event_rule


def draft(make_campaign):
    return make_campaign(kind=Campaign.Kind.CHECKIN)


def form(campaign, **fields):
    data = {
        "campaign": campaign.pk,
        "streak_tiers": "3,7,14",
        "makeup_cards": 0,
        "makeup_window_days": 3,
    } | fields
    return CheckinPlanForm(data=data)


SHARE_CONFIGS = [
    ("plan requires sharing", lambda c: None, {"share_required": "on"}, "checkin_no_share_condition"),
    (
        "a rule rewards a share event",
        lambda c: RewardRule.objects.create(
            campaign=c,
            name="Share bonus",
            trigger="event",
            trigger_event="share_timeline",
            points=5,
            kind="points",
        ),
        {},
        "checkin_no_reward_for_sharing",
    ),
    (
        "a check-in reward waits for a share",
        lambda c: event_rule(c, "checked_in", release_event="shared"),
        {},
        "checkin_no_reward_for_sharing",
    ),
    (
        "the inviter is paid for a friend's check-ins",
        lambda c: event_rule(c, "checkin_streak_7", beneficiary="inviter"),
        {},
        "checkin_own_activity",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize("what, setup, fields, code", SHARE_CONFIGS, ids=[c[0] for c in SHARE_CONFIGS])
def test_the_plan_form_refuses_sharing_conditions(make_campaign, what, setup, fields, code):
    campaign = draft(make_campaign)
    setup(campaign)
    refused = form(campaign, **fields)
    assert not refused.is_valid() and code in str(refused.errors)
    assert not CheckinPlan.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("what, setup, fields, code", SHARE_CONFIGS, ids=[c[0] for c in SHARE_CONFIGS])
def test_launch_refuses_sharing_conditions(make_campaign, ops, what, setup, fields, code):
    campaign = draft(make_campaign)
    CheckinPlan.objects.create(campaign=campaign, share_required=bool(fields))
    setup(campaign)
    with pytest.raises(ConflictError) as refused:
        campaign_services.campaign_launch(campaign_id=campaign.pk, by=ops)
    assert code in refused.value.message
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


@pytest.mark.django_db
def test_launch_needs_a_plan_and_passes_a_clean_one(make_campaign, ops):
    campaign = draft(make_campaign)
    with pytest.raises(ConflictError) as refused:
        campaign_services.campaign_launch(campaign_id=campaign.pk, by=ops)
    assert "checkin_plan_needed" in refused.value.message
    CheckinPlan.objects.create(campaign=campaign)
    event_rule(campaign, "checked_in")
    assert campaign_services.campaign_launch(campaign_id=campaign.pk, by=ops).status == Campaign.Status.LIVE


@pytest.mark.django_db
def test_the_plan_form_checks_tiers_and_kind(make_campaign):
    campaign = draft(make_campaign)
    assert "once" in str(form(campaign, streak_tiers="3,3").errors)
    assert not form(campaign, streak_tiers="0,7").is_valid()
    assert not form(make_campaign(kind=Campaign.Kind.REFERRAL)).is_valid()
    assert form(campaign).is_valid()


@pytest.mark.django_db
def test_public_rules_say_how_it_works_and_that_sharing_is_never_needed(daily):
    text = campaign_rules_text_refresh(campaign_id=daily.pk)
    assert "Checking in never requires sharing or inviting anyone." in text
    assert "Streak rewards at 3, 7 days in a row" in text
    assert "you have 1, each for a day within the last 3 days" in text
    CheckinPlan.objects.filter(campaign=daily).update(makeup_cards=0)
    assert "A missed day starts the streak again from day 1." in campaign_rules_text_refresh(
        campaign_id=daily.pk
    )


# --- admin ---------------------------------------------------------------------------------
@pytest.fixture
def manager_client(client, ops):
    client.force_login(ops)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("model", [CheckinPlan, Checkin, StreakTier])
def test_changelists_load(manager_client, daily, sharer, model):
    for day in range(3):
        services.checkin_do(campaign=daily, participant=sharer, now=timezone.now() - timedelta(days=2 - day))
    answer = manager_client.get(reverse(f"admin:checkin_{model._meta.model_name}_changelist"))
    assert answer.status_code == 200


@pytest.mark.django_db
def test_plan_add_saves_refreshes_rules_warns_and_refuses_a_share_condition(manager_client, make_campaign):
    campaign = draft(make_campaign)
    url = reverse("admin:checkin_checkinplan_add")
    assert manager_client.get(url).status_code == 200
    refused = manager_client.post(
        url,
        {
            "campaign": campaign.pk,
            "streak_tiers": "3,7",
            "makeup_cards": 0,
            "makeup_window_days": 3,
            "share_required": "on",
        },
    )
    assert refused.status_code == 200 and "checkin_no_share_condition" in refused.content.decode()
    assert not CheckinPlan.objects.exists()
    saved = manager_client.post(
        url,
        {"campaign": campaign.pk, "streak_tiers": "7,3", "makeup_cards": 2, "makeup_window_days": 3},
        follow=True,
    )
    assert saved.status_code == 200
    plan = CheckinPlan.objects.get()
    assert plan.streak_tiers == [3, 7]
    assert "No reward rule gives anything for the 3-day tier" in saved.content.decode()
    campaign.refresh_from_db()
    assert "Streak rewards at 3, 7 days in a row" in campaign.reward_rules_text
    change = reverse("admin:checkin_checkinplan_change", args=[plan.pk])
    assert manager_client.get(change).status_code == 200
    answer = manager_client.post(
        reverse("admin:checkin_checkinplan_changelist"),
        {"action": "refresh_rules_text", "_selected_action": [plan.pk]},
        follow=True,
    )
    assert "Rewrote the rules of 1 campaign(s)." in answer.content.decode()


@pytest.mark.django_db
def test_an_analyst_may_look_but_not_configure(client, analyst, daily):
    client.force_login(analyst)
    assert client.get(reverse("admin:checkin_checkin_changelist")).status_code == 200
    assert client.get(reverse("admin:checkin_checkinplan_add")).status_code == 403
    assert client.post(reverse("admin:checkin_checkinplan_add"), {"campaign": daily.pk}).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("model", [Checkin, StreakTier])
def test_changelist_queries_do_not_grow_with_rows(manager_client, daily, make_participant, model):
    url = reverse(f"admin:checkin_{model._meta.model_name}_changelist")

    def add_rows(n):
        for _ in range(n):
            who = make_participant()
            for day in range(3):
                services.checkin_do(
                    campaign=daily, participant=who, now=timezone.now() - timedelta(days=2 - day)
                )

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert manager_client.get(url).status_code == 200
        return len(captured)

    add_rows(1)
    few = queries()
    add_rows(4)
    assert queries() == few
