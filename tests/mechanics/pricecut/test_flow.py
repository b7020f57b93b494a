"""Price cut through the API, with a starter and several friends."""

import time

import orjson
import pytest

from mechanics.pricecut.models import Help, Task
from referrals.api.auth import sign
from referrals.models import ApiKey, Event, Referral, Reward

pytestmark = pytest.mark.django_db


def start(client, offer, **body):
    return client.post(f"/api/v1/price-cut-offers/{offer.pk}/tasks/", body, format="json")


def helped(client, code, **body):
    return client.post(f"/api/v1/price-cuts/{code}/help", body, format="json")


def assert_refused(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["code"] == code


def test_three_friends_cut_the_price_to_the_floor_and_the_starter_is_rewarded(
    api_as, make_participant, offer, cut_rule, eager_tasks, django_capture_on_commit_callbacks
):
    # given ¥199 → ¥99 with 3 helpers, equal cuts
    sue, amy, ben, cy = (make_participant(nickname=n) for n in ("Sue", "Amy", "Ben", "Cy"))
    with django_capture_on_commit_callbacks(execute=True):
        started = start(api_as(sue), offer)
        again = start(api_as(sue), offer)
        code = started.json()["code"]
        first = helped(api_as(amy), code)
        seen = api_as(ben).get(f"/api/v1/price-cuts/{code}/")
        second = helped(api_as(ben), code)
        last = helped(api_as(cy), code)
    assert started.status_code == 201 and again.status_code == 200 and again.json()["code"] == code
    body = started.json()
    assert (body["price"], body["remaining"], body["helpers_left"], body["next_cut"]) == (
        "199.00",
        "100.00",
        3,
        "33.34",
    )
    # each step shows exactly what is left and how many friends are still needed
    assert first.status_code == 201
    assert (first.json()["my_cut"], first.json()["remaining"], first.json()["helpers_left"]) == (
        "33.34",
        "66.66",
        2,
    )
    assert seen.json()["my_cut"] is None and seen.json()["is_starter"] is False
    assert (second.json()["remaining"], second.json()["helpers_left"]) == ("33.33", 1)
    done = last.json()
    assert (done["status"], done["price"], done["remaining"], done["helpers_left"]) == (
        "completed",
        "99.00",
        "0.00",
        0,
    )
    assert [h["cut"] for h in done["helps"]] == ["33.34", "33.33", "33.33"]
    # the helpers are real joins attributed to the starter
    task = Task.objects.get(code=code)
    inviters = dict(Referral.objects.filter(campaign=offer.campaign).values_list("invitee_id", "inviter_id"))
    assert inviters == {sue.pk: None, amy.pk: sue.pk, ben.pk: sue.pk, cy.pk: sue.pk}
    # the starter earned the reward once, under the task's source
    [reward] = Reward.objects.all()
    assert (reward.beneficiary_id, reward.source, reward.points) == (sue.pk, f"pricecut:{task.pk}", 50)
    names = list(
        Event.objects.filter(name__startswith="price_cut_")
        .order_by("id")
        .values_list("name", "participant_id")
    )
    assert names == [
        ("price_cut_started", sue.pk),
        ("price_cut_helped", amy.pk),
        ("price_cut_helped", ben.pk),
        ("price_cut_helped", cy.pk),
        ("price_cut_completed", sue.pk),
    ]
    # "my price cuts" shows it to the starter only
    mine = api_as(sue).get("/api/v1/me/price-cuts/").json()["results"]
    assert [(t["code"], t["status"], t["price"]) for t in mine] == [(code, "completed", "99.00")]
    assert api_as(amy).get("/api/v1/me/price-cuts/").json()["results"] == []


def test_refused_helps_get_clear_codes_and_change_nothing(api_as, make_participant, make_offer):
    offer = make_offer(helpers_needed=1)
    sue, amy, ben = make_participant(), make_participant(), make_participant()
    code = start(api_as(sue), offer).json()["code"]
    before = (Help.objects.count(), Event.objects.count(), Referral.objects.count())
    assert_refused(helped(api_as(sue), code), 409, "own_task")
    assert_refused(helped(api_as(amy), "no-such-task"), 404, "cut_task_not_found")
    assert_refused(api_as(amy).get("/api/v1/price-cuts/no-such-task/"), 404, "cut_task_not_found")
    assert (Help.objects.count(), Event.objects.count(), Referral.objects.count()) == before
    # Amy's help completes it; her second help and Ben's are refused and change nothing
    assert helped(api_as(amy), code).json()["status"] == "completed"
    after = (Help.objects.count(), Event.objects.count(), Referral.objects.count())
    assert_refused(helped(api_as(amy), code), 409, "already_helped")
    assert_refused(helped(api_as(ben), code), 409, "cut_task_completed")
    assert (Help.objects.count(), Event.objects.count(), Referral.objects.count()) == after
    task = Task.objects.get(code=code)
    assert (task.price_fen, task.helper_count) == (9900, 1)


def test_the_same_wechat_account_or_device_cannot_help_itself(api_as, make_participant, offer):
    sue = make_participant(unionid="u-sue", first_device_id="phone-9")
    code = start(api_as(sue), offer).json()["code"]
    assert_refused(helped(api_as(make_participant(unionid="u-sue")), code), 409, "same_person")
    assert_refused(helped(api_as(make_participant()), code, device_id="phone-9"), 409, "same_person")
    assert Task.objects.get(code=code).helper_count == 0


def test_new_users_only_refuses_a_friend_who_had_joined_before(
    api_as, make_participant, make_offer, pc_campaign
):
    from referrals.services.attribution import campaign_join

    offer = make_offer(new_users_only=True)
    sue, old, new = make_participant(), make_participant(), make_participant()
    campaign_join(campaign=pc_campaign, participant=old)
    code = start(api_as(sue), offer).json()["code"]
    assert_refused(helped(api_as(old), code), 409, "not_a_new_user")
    assert helped(api_as(new), code).status_code == 201
    assert Task.objects.get(code=code).helper_count == 1


def test_tasks_start_only_in_a_live_campaign_on_an_active_offer(api_as, make_participant, make_offer):
    assert_refused(start(api_as(make_participant()), make_offer(is_active=False)), 409, "offer_inactive")
    live = make_offer()
    live.campaign.status = "paused"
    live.campaign.save()
    assert_refused(start(api_as(make_participant()), live), 409, "campaign_not_live")
    assert_refused(start(api_as(make_participant()), type(live)(pk=99999)), 404, "offer_not_found")
    assert Task.objects.count() == 0


def test_the_offer_list_publishes_random_bounds(api_as, make_participant, make_offer, pc_campaign):
    make_offer(schedule="random", min_cut_fen=1000, max_cut_fen=5000)
    [offer] = api_as(make_participant()).get(f"/api/v1/campaigns/{pc_campaign.slug}/price-cut-offers/").json()
    assert (offer["schedule"], offer["cut_min"], offer["cut_max"]) == ("random", "10.00", "50.00")


def signed(client, key, method, url, body=b""):
    timestamp = int(time.time())
    headers = {
        "HTTP_X_FISSION_KEY": key.rsplit("_", 1)[0],
        "HTTP_X_FISSION_TIMESTAMP": str(timestamp),
        "HTTP_X_FISSION_SIGNATURE": sign(key, timestamp, body),
    }
    if method == "get":
        return client.get(url, **headers)
    return client.post(url, body, content_type="application/json", **headers)


def test_the_business_backend_checks_and_redeems_a_cut_price_once(
    client, api_as, make_participant, make_offer
):
    raw, prefix, salt, digest = ApiKey.generate()
    ApiKey.objects.create(name="Shop", prefix=prefix, salt=salt, key_hash=digest)
    offer = make_offer(helpers_needed=1)
    sue = make_participant()
    code = start(api_as(sue), offer).json()["code"]
    early = signed(
        client, raw, "post", f"/api/v1/server/price-cuts/{code}/redeem", orjson.dumps({"order_id": "SO-1"})
    )
    assert_refused(early, 409, "cut_task_not_completed")
    helped(api_as(make_participant()), code)
    checked = signed(client, raw, "get", f"/api/v1/server/price-cuts/{code}/").json()
    assert (checked["status"], checked["price"], checked["openid"]) == ("completed", "99.00", sue.openid)
    url = f"/api/v1/server/price-cuts/{code}/redeem"
    first = signed(client, raw, "post", url, orjson.dumps({"order_id": "SO-1"}))
    retry = signed(client, raw, "post", url, orjson.dumps({"order_id": "SO-1"}))
    other = signed(client, raw, "post", url, orjson.dumps({"order_id": "SO-2"}))
    assert first.status_code == 200 and retry.status_code == 200 and first.json()["order_id"] == "SO-1"
    assert_refused(other, 409, "already_redeemed")
    assert client.get(f"/api/v1/server/price-cuts/{code}/").status_code in (401, 403)
    assert api_as(sue).get(f"/api/v1/server/price-cuts/{code}/").status_code in (401, 403)
