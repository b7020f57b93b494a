"""POST /api/v1/server/events/: the business backend, authenticated by API key + HMAC."""

import time
from datetime import timedelta

import orjson
import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from referrals.api.auth import sign
from referrals.models import ApiKey, Event, Referral
from referrals.models.apikey import hash_key
from referrals.services import attribution
from tests.campaigns.test_api import assert_error
from tests.conftest import share_link_for

pytestmark = pytest.mark.django_db
URL = "/api/v1/server/events/"


@pytest.fixture
def api_key(db) -> str:
    raw, prefix, salt, digest = ApiKey.generate()
    ApiKey.objects.create(name="Order service", prefix=prefix, salt=salt, key_hash=digest)
    return raw


def post(
    client,
    key: str,
    events: list,
    *,
    timestamp: int | None = None,
    signature: str | None = None,
    body: bytes | None = None,
):
    body = body if body is not None else orjson.dumps({"events": events})
    timestamp = int(time.time()) if timestamp is None else timestamp
    return client.post(
        URL,
        body,
        content_type="application/json",
        HTTP_X_FISSION_KEY=key.rsplit("_", 1)[0],  # the key id only: the key never travels
        HTTP_X_FISSION_TIMESTAMP=str(timestamp),
        HTTP_X_FISSION_SIGNATURE=signature if signature is not None else sign(key, timestamp, body),
    )


@pytest.fixture
def joined(live_campaign, sharer, invitee):
    code = share_link_for(live_campaign, sharer).code
    attribution.campaign_join(campaign=live_campaign, participant=invitee, code=code)
    return Referral.objects.get(campaign=live_campaign, invitee=invitee)


def resume(event_id: str, openid: str, completeness, **extra) -> dict:
    return {
        "id": event_id,
        "type": "resume_completed",
        "openid": openid,
        "campaign": "cold-start",
        "time": timezone.now().isoformat(),
        "properties": {"completeness": completeness},
        **extra,
    }


def test_qualifying_event_makes_the_invitee_valid_once(client, api_key, joined, invitee):
    # given Ivy joined through Sam's link; the backend reports her resume at 62 %
    events = [resume("r-1", invitee.openid, 0.62)]
    first = post(client, api_key, events)
    assert first.status_code == 200, first.content
    assert first.json()["results"] == [{"id": "r-1", "status": "accepted", "made_valid": True}]
    joined.refresh_from_db()
    assert joined.status == Referral.Status.VALID and joined.valid_event == "resume_completed"
    valid_at = joined.valid_at
    # when the same event is replayed and a later one arrives
    replay = post(client, api_key, events)  # a byte-identical retry (new timestamp and signature)
    later = post(client, api_key, [resume("r-2", invitee.openid, 0.9)])
    resent = post(client, api_key, [resume("r-1", invitee.openid, 0.62)])  # same id, another body
    # then nothing is re-dated or double-counted
    assert replay.json() == first.json()  # the identical request answers the same
    assert resent.json()["results"][0]["status"] == "duplicate"
    assert "made_valid" not in later.json()["results"][0]
    joined.refresh_from_db()
    assert joined.valid_at == valid_at
    assert Event.objects.filter(source=Event.Source.SERVER, participant_id=invitee.pk).count() == 2


def test_event_below_the_threshold_is_recorded_but_not_valid(client, api_key, joined, invitee):
    body = post(client, api_key, [resume("r-1", invitee.openid, 0.4)]).json()
    assert body["accepted"] == 1 and "made_valid" not in body["results"][0]
    joined.refresh_from_db()
    assert joined.status == Referral.Status.JOINED


def test_participant_found_by_unionid_and_unknown_ones_rejected(client, api_key, joined, invitee):
    events = [
        {**resume("r-1", "", 0.8), "unionid": invitee.unionid},
        resume("r-2", "o_nobody", 0.8),
    ]
    events[0].pop("openid")
    body = post(client, api_key, events).json()
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected"]
    assert body["results"][1]["code"] == "participant_unknown"
    joined.refresh_from_db()
    assert joined.status == Referral.Status.VALID


def test_event_outside_the_valid_within_window_does_not_qualify(
    client, api_key, joined, invitee, live_campaign
):
    live_campaign.valid_within_hours = 1
    live_campaign.save()
    # Ivy joined 3 hours ago; the campaign counts qualifying within 1 hour of joining
    Referral.objects.filter(pk=joined.pk).update(joined_at=timezone.now() - timedelta(hours=3))
    body = post(client, api_key, [resume("r-1", invitee.openid, 0.9)]).json()
    assert body["accepted"] == 1 and "made_valid" not in body["results"][0]
    joined.refresh_from_db()
    assert joined.status == Referral.Status.JOINED


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        ("no_key", "not_authenticated"),
        ("unknown_key", "authentication_failed"),
        ("bad_signature", "authentication_failed"),
        ("old_timestamp", "authentication_failed"),
        ("future_timestamp", "authentication_failed"),
        ("body_changed", "authentication_failed"),
        ("revoked", "authentication_failed"),
    ],
)
def test_unauthenticated_or_tampered_calls_are_refused_and_change_nothing(
    client, api_key, joined, invitee, tamper, code
):
    events = [resume("r-1", invitee.openid, 0.9)]
    body = orjson.dumps({"events": events})
    now = int(time.time())
    if tamper == "no_key":
        response = client.post(URL, body, content_type="application/json")
    elif tamper == "unknown_key":
        response = post(client, "fsk_0000nope_" + "x" * 40, events)
    elif tamper == "bad_signature":
        response = post(client, api_key, events, signature="0" * 64)
    elif tamper == "old_timestamp":
        response = post(client, api_key, events, timestamp=now - 301)
    elif tamper == "future_timestamp":
        response = post(client, api_key, events, timestamp=now + 301)
    elif tamper == "body_changed":
        signature = sign(api_key, now, body)
        tampered = body.replace(b"0.9", b"1.0")
        response = post(client, api_key, events, timestamp=now, signature=signature, body=tampered)
    else:
        ApiKey.objects.update(revoked_at=timezone.now())
        response = post(client, api_key, events)
    assert_error(response, 401, code)
    joined.refresh_from_db()
    assert joined.status == Referral.Status.JOINED
    assert not Event.objects.filter(source=Event.Source.SERVER).exists()


def test_qualifying_after_the_campaign_ended_does_not_count(client, api_key, joined, invitee, live_campaign):
    from campaigns.models import Campaign

    Campaign.objects.filter(pk=live_campaign.pk).update(
        status=Campaign.Status.ENDED, ends_at=timezone.now() - timedelta(hours=1)
    )
    body = post(client, api_key, [resume("r-1", invitee.openid, 0.9)]).json()
    assert body["accepted"] == 1 and "made_valid" not in body["results"][0]
    joined.refresh_from_db()
    assert joined.status == Referral.Status.JOINED


def test_a_changed_master_secret_retires_every_key(client, api_key, joined, invitee, settings):
    settings.FISSION_API_KEY_MASTER = "a-new-master-secret"
    assert_error(post(client, api_key, [resume("r-1", invitee.openid, 0.9)]), 401, "authentication_failed")


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_X_FISSION_TIMESTAMP": "9" * 400},
        {"HTTP_X_FISSION_TIMESTAMP": "１２３"},
        {"HTTP_X_FISSION_SIGNATURE": "é" * 64},
    ],
)
def test_odd_headers_are_401_not_500(client, api_key, headers):
    body = orjson.dumps({"events": []})
    base = {
        "HTTP_X_FISSION_KEY": api_key.rsplit("_", 1)[0],
        "HTTP_X_FISSION_TIMESTAMP": str(int(time.time())),
        "HTTP_X_FISSION_SIGNATURE": "0" * 64,
    }
    response = client.post(URL, body, content_type="application/json", **(base | headers))
    assert_error(response, 401, "authentication_failed")


def test_participant_tokens_cannot_call_the_server_endpoint(api_as, invitee):
    assert_error(api_as(invitee).post(URL, {"events": []}, format="json"), 401, "not_authenticated")


def test_admin_makes_a_key_shows_it_once_and_stores_only_its_hash(admin_client):
    response = admin_client.post(
        reverse("admin:referrals_apikey_add"), {"name": "Order service"}, follow=True
    )
    [message] = [str(m) for m in get_messages(response.wsgi_request) if "copy it now" in str(m)]
    raw = message.split(" is ")[1].split(" — ")[0]
    key = ApiKey.objects.get()
    assert raw.startswith(key.key_id + "_") and key.key_hash == hash_key(raw) and key.raw_key() == raw
    secret_part = raw.rsplit("_", 1)[1]
    assert secret_part not in str(ApiKey.objects.values_list())  # not stored anywhere in the row
    assert secret_part not in response.cookies.output()  # nor in a messages cookie
    page = admin_client.get(reverse("admin:referrals_apikey_change", args=[key.pk])).content.decode()
    assert raw not in page and key.key_hash not in page


def test_admin_revoke_action(admin_client, api_key):
    key = ApiKey.objects.get()
    admin_client.post(
        reverse("admin:referrals_apikey_changelist"), {"action": "revoke", "_selected_action": [key.pk]}
    )
    key.refresh_from_db()
    assert key.revoked_at is not None
