"""Group buying through the API, with several participants: open, share, join, complete."""

import pytest

from mechanics.groupbuy.models import Group, Member, Signal
from referrals.models import Event, Referral, Reward

from .conftest import json_body, signed

pytestmark = pytest.mark.django_db


def open_group(client, deal, **body):
    return client.post(f"/api/v1/group-deals/{deal.pk}/groups/", body, format="json")


def join(client, code, **body):
    return client.post(f"/api/v1/groups/{code}/join", body, format="json")


def test_three_friends_fill_a_group_which_completes_fulfils_and_rewards(
    api_as,
    make_participant,
    deal,
    group_rule,
    server_key,
    eager_tasks,
    django_capture_on_commit_callbacks,
    client,
):
    # given a leader and two friends
    lea, bob, cat = (make_participant(nickname=n) for n in ("Lea", "Bob", "Cat"))
    with django_capture_on_commit_callbacks(execute=True):
        # when the leader opens a group (twice: the second is the same group)
        opened = open_group(api_as(lea), deal, order_id="SO-1")
        again = open_group(api_as(lea), deal)
        code = opened.json()["code"]
        # and the friends look at it through the link and join
        seen = api_as(bob).get(f"/api/v1/groups/{code}/")
        first = join(api_as(bob), code, order_id="SO-2")
        second = join(api_as(cat), code, order_id="SO-3")
    # then
    assert opened.status_code == 201 and again.status_code == 200 and again.json()["code"] == code
    assert opened.json()["seats_left"] == 2 and opened.json()["me"]["seat"] == 1
    assert seen.status_code == 200 and seen.json()["me"] is None and seen.json()["leader"] == "Lea"
    assert first.status_code == 201 and first.json()["seats_left"] == 1 and first.json()["status"] == "open"
    body = second.json()
    assert second.status_code == 201 and body["status"] == "completed" and body["seats_left"] == 0
    assert [m["name"] for m in body["members"]] == ["Lea", "Bob", "Cat"]
    assert body["final_price"] == "59.00" and body["me"]["seat"] == 3
    group = Group.objects.get(code=code)
    assert group.closed_at is not None and group.member_count == 3
    # the joins are real campaign joins attributed to the leader
    inviters = dict(Referral.objects.filter(campaign=deal.campaign).values_list("invitee_id", "inviter_id"))
    assert inviters == {lea.pk: None, bob.pk: lea.pk, cat.pk: lea.pk}
    # each member earned the group reward once, under the group's source
    rewards = Reward.objects.filter(source=f"group:{group.pk}")
    assert sorted(rewards.values_list("beneficiary_id", flat=True)) == sorted([lea.pk, bob.pk, cat.pk])
    # the log has the story
    names = list(
        Event.objects.filter(campaign_id=deal.campaign_id, name__startswith="group_")
        .order_by("id")
        .values_list("name", "participant_id")
    )
    assert names == [
        ("group_opened", lea.pk),
        ("group_joined", bob.pk),
        ("group_joined", cat.pk),
        ("group_completed", lea.pk),
    ]
    # the business backend pulls the three fulfil signals and acknowledges them
    pulled = signed(client, server_key, "get", "/api/v1/server/group-signals/")
    signals = pulled.json()["signals"]
    assert pulled.status_code == 200
    assert [(s["kind"], s["order_id"], s["amount"]) for s in signals] == [
        ("fulfil", "SO-1", "59.00"),
        ("fulfil", "SO-2", "59.00"),
        ("fulfil", "SO-3", "59.00"),
    ]
    ids = [s["id"] for s in signals]
    acked = signed(client, server_key, "post", "/api/v1/server/group-signals/ack", json_body({"ids": ids}))
    again = signed(client, server_key, "post", "/api/v1/server/group-signals/ack", json_body({"ids": ids}))
    assert acked.json() == {"acked": 3, "already_acked": 0, "unknown": 0}
    assert again.json() == {"acked": 0, "already_acked": 3, "unknown": 0}
    assert signed(client, server_key, "get", "/api/v1/server/group-signals/").json()["signals"] == []
    # and each participant sees the group in "my groups"
    mine = api_as(bob).get("/api/v1/me/groups/").json()["results"]
    assert [(g["code"], g["seat"], g["status"], g["group_status"]) for g in mine] == [
        (code, 2, "confirmed", "completed")
    ]
    assert api_as(make_participant()).get("/api/v1/me/groups/").json()["results"] == []


def test_the_signal_routes_refuse_callers_without_a_valid_signature(client, api_as, make_participant):
    assert client.get("/api/v1/server/group-signals/").status_code in (401, 403)
    assert api_as(make_participant()).get("/api/v1/server/group-signals/").status_code in (401, 403)


def assert_refused(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["code"] == code


def test_refused_joins_get_clear_codes_and_change_nothing(api_as, make_participant, make_deal):
    deal = make_deal(group_size=2)
    lea, bob, cat = make_participant(), make_participant(), make_participant()
    code = open_group(api_as(lea), deal).json()["code"]
    before = (Member.objects.count(), Event.objects.count(), Referral.objects.count())
    # the leader cannot join their own group
    assert_refused(join(api_as(lea), code), 409, "own_group")
    # an unknown group
    assert_refused(join(api_as(bob), "nope-nope-nop"), 404, "group_not_found")
    assert_refused(api_as(bob).get("/api/v1/groups/nope-nope-nop/"), 404, "group_not_found")
    # bad input
    assert_refused(join(api_as(bob), code, order_id="no spaces allowed"), 400, "invalid")
    assert (Member.objects.count(), Event.objects.count(), Referral.objects.count()) == before
    # Bob fills it; his second join and Cat's join are refused, and change nothing
    assert join(api_as(bob), code).status_code == 201
    after = (Member.objects.count(), Event.objects.count(), Referral.objects.count(), Signal.objects.count())
    assert_refused(join(api_as(bob), code), 409, "already_member")
    assert_refused(join(api_as(cat), code), 409, "group_full")
    assert (
        Member.objects.count(),
        Event.objects.count(),
        Referral.objects.count(),
        Signal.objects.count(),
    ) == after
    assert not Referral.objects.filter(invitee=cat).exists()


def test_the_same_wechat_account_or_device_cannot_fill_its_own_group(api_as, make_participant, deal):
    lea = make_participant(unionid="u-lea", first_device_id="phone-1")
    twin = make_participant(unionid="u-lea")
    same_phone = make_participant()
    code = open_group(api_as(lea), deal).json()["code"]
    assert_refused(join(api_as(twin), code), 409, "same_person")
    assert_refused(join(api_as(same_phone), code, device_id="phone-1"), 409, "same_person")
    assert Group.objects.get(code=code).member_count == 1


def test_one_filling_group_per_deal_per_participant(api_as, make_participant, deal, make_deal):
    lea, kim, bob = make_participant(), make_participant(), make_participant()
    first = open_group(api_as(lea), deal).json()["code"]
    second = open_group(api_as(kim), deal).json()["code"]
    assert join(api_as(bob), first).status_code == 201
    # Bob holds a seat in a filling group of this deal: not a second one, nor one of his own
    assert_refused(join(api_as(bob), second), 409, "already_in_a_group")
    assert_refused(open_group(api_as(bob), deal), 409, "already_in_a_group")
    # another deal is fine
    assert open_group(api_as(bob), make_deal()).status_code == 201


def test_groups_open_only_in_a_live_campaign_on_an_active_deal(api_as, make_participant, make_deal):
    deal = make_deal(is_active=False)
    assert_refused(open_group(api_as(make_participant()), deal), 409, "deal_inactive")
    live = make_deal()
    live.campaign.status = "paused"
    live.campaign.save()
    assert_refused(open_group(api_as(make_participant()), live), 409, "campaign_not_live")
    assert Group.objects.count() == 0


def test_the_deal_list_shows_prices_and_tiers(api_as, make_participant, make_deal, gb_campaign):
    make_deal(group_size=2, max_size=4, tiers=[(3, 5000), (4, 4500)])
    response = api_as(make_participant()).get(f"/api/v1/campaigns/{gb_campaign.slug}/group-deals/")
    [deal] = response.json()
    assert (deal["group_price"], deal["original_price"], deal["capacity"]) == ("59.00", "99.00", 4)
    assert deal["tiers"] == [{"min_members": 3, "price": "50.00"}, {"min_members": 4, "price": "45.00"}]


def test_a_tiered_group_keeps_growing_and_refunds_the_difference(api_as, make_participant, make_deal):
    # given K = 2, up to 4 members, ¥50 from 3 and ¥45 from 4 (group price ¥59)
    deal = make_deal(group_size=2, max_size=4, tiers=[(3, 5000), (4, 4500)])
    people = [make_participant() for _ in range(4)]
    code = open_group(api_as(people[0]), deal).json()["code"]
    # when the second member joins, the group completes but keeps taking members
    body = join(api_as(people[1]), code).json()
    assert (body["status"], body["taking_members"], body["next_tier"]["price"]) == (
        "completed",
        True,
        "50.00",
    )
    assert join(api_as(people[2]), code).json()["price_now"] == "50.00"
    last = join(api_as(people[3]), code).json()
    # then at 4 it is full, closed at ¥45, and each member is refunded ¥14
    assert (last["taking_members"], last["final_price"]) == (False, "45.00")
    fulfil = Signal.objects.filter(kind="fulfil").count()
    refunds = list(Signal.objects.filter(kind="refund_difference").values_list("amount_fen", flat=True))
    assert fulfil == 4 and refunds == [1400] * 4
    assert_refused(join(api_as(make_participant()), code), 409, "group_full")
