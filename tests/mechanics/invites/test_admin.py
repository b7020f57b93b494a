"""The invite-task admin: the task form writes the tiers, the progress list filters and acts."""

from decimal import Decimal

import pytest

from campaigns.models import Campaign
from mechanics.invites.admin import parse_tiers
from mechanics.invites.models import InviteTask, TierReached
from referrals.models import Referral, RewardRule
from referrals.services.attribution import campaign_join, share_link_get_or_create


def test_parse_tiers_reads_cash_points_and_names():
    specs = parse_tiers("3 = 5.00\n5 friends -> 100 points | Silver\n\n10 = ¥20 | Gold chest")
    assert [(s.count, s.kind, s.amount, s.points, s.name) for s in specs] == [
        (3, "cash", Decimal("5.00"), None, ""),
        (5, "points", None, 100, "Silver"),
        (10, "cash", Decimal("20.00"), None, "Gold chest"),
    ]


@pytest.mark.parametrize("text", ["three = 5", "10 = 20\n3 = 5", "3 = 5\n3 = 6"])
def test_parse_tiers_refuses_bad_lines_and_disorder(text):
    from django import forms

    with pytest.raises(forms.ValidationError):
        parse_tiers(text)


def form_data(campaign, tiers: str) -> dict:
    return {"campaign": campaign.pk, "title": "Treasure chest", "description": "", "tiers": tiers}


def test_ops_create_a_task_with_tiers_in_the_admin(client, ops, make_campaign):
    campaign = make_campaign(kind=Campaign.Kind.INVITE_TASK, valid_event_name="resume_completed")
    client.force_login(ops)
    assert client.get("/admin/invites/invitetask/add/").status_code == 200
    answer = client.post("/admin/invites/invitetask/add/", form_data(campaign, "3 = 5.00\n10 = 20.00 | Gold"))
    assert answer.status_code == 302, answer.content.decode()[:3000]
    rules = RewardRule.objects.filter(campaign=campaign, trigger="milestone", is_active=True).order_by(
        "milestone"
    )
    assert [(r.milestone, r.amount, r.name) for r in rules] == [
        (3, Decimal("5.00"), "Invite task: 3 valid friends"),
        (10, Decimal("20.00"), "Gold"),
    ]
    campaign.refresh_from_db()
    assert "3 friends → ¥5.00 cash; 10 friends → ¥20.00 cash" in campaign.reward_rules_text
    task = InviteTask.objects.get(campaign=campaign)
    page = client.get(f"/admin/invites/invitetask/{task.pk}/change/").content.decode()
    assert "3 = 5.00\n10 = 20.00 | Gold" in page
    assert "Nothing blocks the launch of this task." in page


def test_admin_form_refuses_decreasing_tiers_and_saves_nothing(client, ops, make_campaign):
    campaign = make_campaign(kind=Campaign.Kind.INVITE_TASK, valid_event_name="resume_completed")
    client.force_login(ops)
    answer = client.post("/admin/invites/invitetask/add/", form_data(campaign, "3 = 10.00\n10 = 5.00"))
    assert answer.status_code == 200
    assert "invite_tiers_increasing" in answer.content.decode()
    assert not InviteTask.objects.exists() and not RewardRule.objects.filter(campaign=campaign).exists()


def test_admin_form_refuses_a_bare_join_valid_event(client, ops, make_campaign):
    campaign = make_campaign(kind=Campaign.Kind.INVITE_TASK, valid_event_name="join")
    client.force_login(ops)
    answer = client.post("/admin/invites/invitetask/add/", form_data(campaign, "3 = 5.00"))
    assert answer.status_code == 200 and "invite_needs_valid_action" in answer.content.decode()
    assert not InviteTask.objects.exists()


def test_admin_form_offers_only_invite_task_campaigns(client, ops, make_campaign, live_campaign):
    client.force_login(ops)
    answer = client.post("/admin/invites/invitetask/add/", form_data(live_campaign, "3 = 5.00"))
    assert answer.status_code == 200 and not InviteTask.objects.exists()


@pytest.fixture
def progress_world(task_campaign, make_participant):
    """Sam: 3 valid friends of 4; Pat: 1 valid of 1; Quinn: joined, nobody invited."""
    sam, pat, quinn = (make_participant(nickname=n) for n in ("Sam", "Pat", "Quinn"))
    for sharer, friends, valid in ((sam, 4, 3), (pat, 1, 1)):
        campaign_join(campaign=task_campaign, participant=sharer)
        link, _ = share_link_get_or_create(campaign=task_campaign, sharer=sharer)
        for n in range(friends):
            friend = make_participant()
            referral = campaign_join(campaign=task_campaign, participant=friend, code=link.code)["referral"]
            if n < valid:
                from django.utils import timezone

                Referral.objects.filter(pk=referral.pk).update(
                    status="valid", valid_at=timezone.now(), valid_event="resume_completed"
                )
    campaign_join(campaign=task_campaign, participant=quinn)
    return sam, pat, quinn


def names_in(page: str, people) -> set[str]:
    return {p.nickname for p in people if f">{p.nickname}<" in page}


def test_progress_list_shows_and_filters_participants(client, ops, task_campaign, progress_world):
    client.force_login(ops)
    url = "/admin/invites/taskprogress/"
    page = client.get(f"{url}?campaign={task_campaign.pk}").content.decode()
    assert names_in(page, progress_world) == {"Sam", "Pat", "Quinn"}
    assert names_in(client.get(f"{url}?progress=none").content.decode(), progress_world) == {"Quinn"}
    assert names_in(client.get(f"{url}?progress=started").content.decode(), progress_world) == {"Sam", "Pat"}
    assert names_in(client.get(f"{url}?pending=yes").content.decode(), progress_world) == {"Sam"}
    assert client.get(f"{url}?progress=completed").status_code == 200
    row = client.get(f"{url}?q=Sam").content.decode()
    assert ">3<" in row and ">1<" in row  # 3 valid friends, 1 not yet valid


def test_recheck_action_records_reached_tiers(client, ops, task_campaign, progress_world):
    sam = progress_world[0]
    client.force_login(ops)
    membership = Referral.objects.get(campaign=task_campaign, invitee=sam)
    answer = client.post(
        "/admin/invites/taskprogress/",
        {"action": "recheck", "_selected_action": [membership.pk]},
        follow=True,
    )
    assert "Checked 1 participant(s); 1 tier(s) newly recorded." in answer.content.decode()
    assert list(TierReached.objects.values_list("participant_id", "milestone")) == [(sam.pk, 3)]
    assert client.get("/admin/invites/tierreached/").status_code == 200


def test_progress_list_query_count_is_flat(
    client, ops, task_campaign, progress_world, make_participant, django_assert_max_num_queries
):
    for _ in range(10):
        campaign_join(campaign=task_campaign, participant=make_participant())
    client.force_login(ops)
    with django_assert_max_num_queries(14):
        assert client.get("/admin/invites/taskprogress/").status_code == 200


def test_analyst_may_look_but_not_set_up(client, analyst, task_campaign, progress_world):
    client.force_login(analyst)
    assert client.get("/admin/invites/taskprogress/").status_code == 200
    membership = Referral.objects.get(campaign=task_campaign, invitee=progress_world[0])
    assert client.get(f"/admin/invites/taskprogress/{membership.pk}/change/").status_code == 200
    client.post("/admin/invites/taskprogress/", {"action": "recheck", "_selected_action": [membership.pk]})
    assert not TierReached.objects.exists()
    assert client.get("/admin/invites/invitetask/").status_code == 200
    assert client.get("/admin/invites/invitetask/add/").status_code == 403
