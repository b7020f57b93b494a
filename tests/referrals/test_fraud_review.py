"""The review of one case: its evidence page (timeline, ring picture), a decision with notes
on that page, what the participant then sees, and that nobody decides a case about
themselves or their identity ring."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.urls import reverse

from config.errors import ConflictError
from referrals.models import FraudCase, Participant, Referral, Reward, RewardRule
from referrals.services import fraud, rewards
from referrals.services.events import event_record
from referrals.services.fraud_rings import fraud_ring_links, fraud_ring_of

from .test_fraud import world  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def case(live_campaign, world):  # noqa: F811
    """Sam's case: one invitee joined on Sam's own phone, one joined faster than a human."""
    sharer, invitee, now = world
    Referral.objects.create(
        campaign=live_campaign, invitee=sharer, root=sharer, depth=0, joined_at=now - timedelta(hours=1)
    )
    rule = RewardRule.objects.create(campaign=live_campaign, name="r", amount=Decimal("5.00"), hold_hours=0)
    reward, _ = rewards.reward_grant(rule=rule, beneficiary_id=sharer.pk, source="referral:1:invitee_valid")
    first = invitee(device="dev-sharer", valid_at=now)
    invitee(device="x", opened=now - timedelta(seconds=1), joined_at=now)
    fraud.fraud_score_campaign(campaign_id=live_campaign.pk)
    return FraudCase.objects.get(), reward, first.invitee


@pytest.fixture
def reviewer(db):
    user = User.objects.create_user("rita", is_staff=True)
    user.groups.add(Group.objects.get(name="Fraud reviewers"))
    return user


def test_the_case_page_shows_the_timeline_and_a_picture_of_the_ring(
    client,
    reviewer,
    live_campaign,
    case,
    world,  # noqa: F811
):
    sharer, _, now = world
    the_case, reward, phone_friend = case
    event_record(
        participant_id=sharer.pk,
        campaign_id=live_campaign.pk,
        name="resume_started",
        client_event_id="e-1",
        occurred_at=now,
    )
    client.force_login(reviewer)
    page = client.get(reverse("admin:referrals_fraudcase_change", args=[the_case.pk])).content.decode()
    for seen in ("joined", "not invited", "event “resume_started”", f"reward #{reward.pk}", "granted (held)"):
        assert seen in page, seen
    # The picture: Sam in the middle of attention, linked to the friend by the shared device.
    assert 'class="fraud-ring"' in page
    assert f'data-participant="{sharer.pk}" data-role="case"' in page
    assert f'data-participant="{phone_friend.pk}" data-role="member"' in page
    assert 'data-kind="device"' in page
    assert "<code>dev-sharer</code>" in page


def test_ring_links_name_what_ties_the_members(world):  # noqa: F811
    sharer, invitee, _ = world
    friend = invitee(device="dev-sharer").invitee
    assert fraud_ring_links(fraud_ring_of(sharer.pk)) == [
        {"kind": "device", "identifier": "dev-sharer", "members": sorted([sharer.pk, friend.pk])}
    ]


def test_one_case_decided_on_its_page_with_a_note_the_participant_sees(
    client,
    reviewer,
    api_as,
    live_campaign,
    case,
    world,  # noqa: F811
):
    sharer, _, _ = world
    the_case, reward, _ = case
    [item] = api_as(sharer).get("/api/v1/me/rewards/").json()["results"]
    assert (item["status"], item["why_held"], item["review_note"]) == ("held", "under review", "")
    client.force_login(reviewer)
    url = reverse("admin:referrals_fraudcase_change", args=[the_case.pk])
    response = client.post(
        url,
        {
            "decision": "cleared",
            "note": "the shared phone is a family tablet",
            "note_to_participant": "Thanks for waiting: your rewards are on their way.",
        },
    )
    assert response.status_code == 302
    the_case.refresh_from_db()
    reward.refresh_from_db()
    assert (the_case.state, the_case.reviewer, the_case.note) == (
        "cleared",
        reviewer,
        "the shared phone is a family tablet",
    )
    assert reward.hold_reason == "review hold"  # back with finance, no longer under review
    [item] = api_as(sharer).get("/api/v1/me/rewards/").json()["results"]
    assert (item["why_held"], item["review_note"]) == (
        "review hold",
        "Thanks for waiting: your rewards are on their way.",
    )
    # A decided case is not decided again from its page.
    assert 'name="decision"' not in client.get(url).content.decode()


def test_leaving_the_decision_empty_changes_nothing(client, reviewer, case):
    the_case, _, _ = case
    client.force_login(reviewer)
    url = reverse("admin:referrals_fraudcase_change", args=[the_case.pk])
    client.post(url, {"decision": "", "note": "looked, unsure", "note_to_participant": ""})
    the_case.refresh_from_db()
    assert (the_case.state, the_case.note, the_case.reviewer) == ("open", "", None)


def test_nobody_decides_a_case_about_themselves(client, reviewer, case, world):  # noqa: F811
    sharer, _, _ = world
    the_case, reward, _ = case
    Participant.objects.filter(pk=sharer.pk).update(staff_user=reviewer)
    with pytest.raises(ConflictError) as refused:
        fraud.fraud_case_decide(case_id=the_case.pk, decision="cleared", by=reviewer)
    assert refused.value.code == "fraud_own_case"
    client.force_login(reviewer)
    response = client.post(
        reverse("admin:referrals_fraudcase_changelist"),
        {"action": "clear", "_selected_action": [the_case.pk]},
        follow=True,
    )
    assert "about you or your identity ring" in response.content.decode()
    the_case.refresh_from_db()
    reward.refresh_from_db()
    assert (the_case.state, reward.status) == ("open", Reward.Status.HELD)
    other = User.objects.create_user("otto", is_staff=True)
    other.groups.add(Group.objects.get(name="Fraud reviewers"))
    assert fraud.fraud_case_decide(case_id=the_case.pk, decision="cleared", by=other).state == "cleared"


def test_nor_a_case_about_someone_in_their_identity_ring(reviewer, case):
    the_case, _, phone_friend = case  # the friend joined on the sharer's phone: the same ring
    Participant.objects.filter(pk=phone_friend.pk).update(staff_user=reviewer)
    with pytest.raises(ConflictError) as refused:
        fraud.fraud_case_decide(case_id=the_case.pk, decision="confirmed", by=reviewer)
    assert refused.value.code == "fraud_own_case"
    the_case.refresh_from_db()
    assert the_case.state == "open"


def test_only_a_superuser_says_which_participant_is_whom(client, admin_client, world):  # noqa: F811
    sharer, _, _ = world
    url = reverse("admin:referrals_participant_change", args=[sharer.pk])
    assert 'name="staff_user"' in admin_client.get(url).content.decode()
    manager = User.objects.create_user("mia", is_staff=True)
    manager.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_participant", "change_participant"])
    )
    client.force_login(manager)
    page = client.get(url)
    assert page.status_code == 200 and 'name="staff_user"' not in page.content.decode()


def test_the_ring_walk_can_look_identifiers_up_by_index(world):  # noqa: F811
    """Without the expression indexes each step of the walk reads every participant, referral
    and open; with them PostgreSQL can answer from the index (shown with seq scans off)."""
    from referrals.services.fraud_rings import HOLDERS_OF

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + HOLDERS_OF, [["ddev-sharer", "n10.1.2.3 UA-sharer", "uabc"], 10])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    for index in (
        "participant_ring_device",
        "participant_ring_ip_ua",
        "participant_ring_account",
        "referral_ring_device",
        "shareopen_ring_device",
        "shareopen_ring_ip_ua",
    ):
        assert index in plan, index
