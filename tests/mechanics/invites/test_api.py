"""The invite-N task through the mini program's API: only valid friends move the count."""

from decimal import Decimal

from django.utils import timezone

from referrals.models import Reward, RewardRule
from referrals.services.attribution import referral_mark_valid


def become_valid(campaign, participant, capture):
    with capture(execute=True):
        referral_mark_valid(
            campaign=campaign,
            participant_id=participant.pk,
            event_name="resume_completed",
            occurred_at=timezone.now(),
        )


def test_task_progress_counts_only_valid_friends(
    task_campaign, sharer, make_participant, api_as, eager_tasks, django_capture_on_commit_callbacks
):
    sam = api_as(sharer)
    slug = task_campaign.slug
    # given Sam, who joined and shared his link with four friends who all joined
    assert sam.post(f"/api/v1/campaigns/{slug}/join", {}, format="json").status_code == 201
    code = sam.post(f"/api/v1/campaigns/{slug}/share-links/", {}, format="json").json()["code"]
    friends = [make_participant(nickname=f"Pal {i}") for i in range(4)]
    for friend in friends:
        client = api_as(friend)
        client.post(f"/api/v1/share-links/{code}/open", {}, format="json")
        assert client.post(f"/api/v1/campaigns/{slug}/join", {"code": code}, format="json").status_code == 201

    # then shares, opens and joins count for nothing
    me = sam.get(f"/api/v1/invite-tasks/{slug}/me").json()
    assert (me["valid_friends"], me["pending_friends"]) == (0, 4)
    assert me["message"] == "3 more friends to go" and me["friends_to_go"] == 3
    assert me["next_tier"]["count"] == 3 and me["next_tier"]["reward"] == "¥5.00 cash"

    # when one friend completes their resume
    become_valid(task_campaign, friends[0], django_capture_on_commit_callbacks)
    me = sam.get(f"/api/v1/invite-tasks/{slug}/me").json()
    assert (me["valid_friends"], me["pending_friends"], me["message"]) == (1, 3, "2 more friends to go")
    assert me["tiers_unlocked"] == 0 and me["tiers"][0]["reward_status"] is None

    # and two more
    become_valid(task_campaign, friends[1], django_capture_on_commit_callbacks)
    assert sam.get(f"/api/v1/invite-tasks/{slug}/me").json()["message"] == "1 more friend to go"
    become_valid(task_campaign, friends[2], django_capture_on_commit_callbacks)

    # then the first tier is unlocked and its reward granted by the ledger, once
    me = sam.get(f"/api/v1/invite-tasks/{slug}/me").json()
    first, gold = me["tiers"]
    assert first["unlocked"] is True and first["reward_status"] in ("pending", "held")
    assert Decimal(first["reward_amount"]) == Decimal("5.00")
    assert gold["unlocked"] is False and gold["friends_to_go"] == 7 and gold["name"] == "Gold"
    assert me["message"] == "7 more friends to go" and me["tiers_unlocked"] == 1 and not me["completed"]
    tier_rule = RewardRule.objects.get(campaign=task_campaign, milestone=3)
    assert Reward.objects.filter(rule=tier_rule, beneficiary=sharer).count() == 1
    become_valid(task_campaign, friends[3], django_capture_on_commit_callbacks)
    assert Reward.objects.filter(rule=tier_rule, beneficiary=sharer).count() == 1

    # and the friends list says who counts
    rows = sam.get(f"/api/v1/invite-tasks/{slug}/me/friends").json()
    rows = rows["results"] if isinstance(rows, dict) else rows
    assert len(rows) == 4 and all(r["counts"] for r in rows)


def test_a_friend_sees_their_own_progress_not_the_inviters(
    task_campaign, sharer, invitee, api_as, eager_tasks, django_capture_on_commit_callbacks
):
    sam, ivy = api_as(sharer), api_as(invitee)
    sam.post(f"/api/v1/campaigns/{task_campaign.slug}/join", {}, format="json")
    code = sam.post(f"/api/v1/campaigns/{task_campaign.slug}/share-links/", {}, format="json").json()["code"]
    ivy.post(f"/api/v1/campaigns/{task_campaign.slug}/join", {"code": code}, format="json")
    become_valid(task_campaign, invitee, django_capture_on_commit_callbacks)
    assert sam.get(f"/api/v1/invite-tasks/{task_campaign.slug}/me").json()["valid_friends"] == 1
    mine = ivy.get(f"/api/v1/invite-tasks/{task_campaign.slug}/me").json()
    assert (mine["valid_friends"], mine["pending_friends"], mine["joined"]) == (0, 0, True)
    friends = ivy.get(f"/api/v1/invite-tasks/{task_campaign.slug}/me/friends").json()
    assert (friends["results"] if isinstance(friends, dict) else friends) == []


def test_not_joined_yet_is_told_to_join(task_campaign, sharer, api_as):
    me = api_as(sharer).get(f"/api/v1/invite-tasks/{task_campaign.slug}/me").json()
    assert me["joined"] is False and me["message"] == "Join the campaign to start inviting friends."
    assert me["tiers_unlocked"] == 0


def test_task_detail_lists_tiers_and_public_rules(task_campaign, sharer, api_as):
    body = api_as(sharer).get(f"/api/v1/invite-tasks/{task_campaign.slug}/").json()
    assert body["title"] == "Open the treasure chest"
    assert [(t["count"], t["reward"]) for t in body["tiers"]] == [(3, "¥5.00 cash"), (10, "¥20.00 cash")]
    assert "3 friends → ¥5.00 cash; 10 friends → ¥20.00 cash" in body["rules_text"]
    assert "Sharing, opening a link or joining alone never counts" in body["rules_text"]
    assert body["valid_user_rule"] == "resume_completed"


def test_task_routes_refuse_other_campaigns_and_anonymous(live_campaign, sharer, api_as):
    answer = api_as(sharer).get(f"/api/v1/invite-tasks/{live_campaign.slug}/me")
    assert answer.status_code == 404 and answer.json()["code"] == "not_an_invite_task"
    assert api_as(sharer).get("/api/v1/invite-tasks/nope/me").json()["code"] == "campaign_not_found"
    assert api_as(None).get(f"/api/v1/invite-tasks/{live_campaign.slug}/me").status_code in (401, 403)


def test_task_routes_are_in_the_api_schema(client, db):
    schema = client.get("/api/schema/").content.decode()
    for route in (
        "/api/v1/invite-tasks/{slug}/",
        "/api/v1/invite-tasks/{slug}/me",
        "/api/v1/invite-tasks/{slug}/me/friends",
    ):
        assert route in schema, route
    assert "friends to go" in schema
