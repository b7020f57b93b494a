"""The mini-program API end to end (through Django's test client; WeChat is the fake over real HTTP)."""

import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from referrals.models import Participant, Referral, ShareLink, ShareOpen
from referrals.tokens import token_issue
from tests.campaigns.test_api import assert_error

pytestmark = pytest.mark.django_db


def image_upload(fmt="PNG", size=(600, 400), colour="#3366CC", name="me.png") -> SimpleUploadedFile:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format=fmt)
    return SimpleUploadedFile(name, buf.getvalue(), content_type=f"image/{fmt.lower()}")


# --- login -------------------------------------------------------------------------
def test_login_creates_a_participant_and_returns_a_token_but_never_the_session_key(
    client, fake_wechat, caplog
):
    code = fake_wechat.issue_code(unionid="u_123")
    response = client.post(
        "/api/v1/auth/wechat/",
        {"code": code, "device_id": "dev-1"},
        content_type="application/json",
        REMOTE_ADDR="203.0.113.5",
        HTTP_USER_AGENT="Mozilla/5.0 MicroMessenger/8.0.50",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["created"] is True and body["token"] and body["expires_at"]
    participant = Participant.objects.get()
    assert participant.unionid == "u_123" and participant.first_device_id == "dev-1"
    assert participant.first_ip == "203.0.113.5"
    assert participant.first_user_agent == "Mozilla/5.0 MicroMessenger/8.0.50"  # for fraud scoring
    assert participant.session_key and participant.session_key not in response.content.decode()
    assert participant.session_key not in caplog.text
    # the token works
    me = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert me.json()["id"] == participant.pk and me.json()["nickname"] == "WeChat user"


def test_second_login_finds_the_same_participant(client, fake_wechat):
    first = client.post(
        "/api/v1/auth/wechat/",
        {"code": fake_wechat.issue_code(openid="o_same")},
        content_type="application/json",
    ).json()
    second = client.post(
        "/api/v1/auth/wechat/",
        {"code": fake_wechat.issue_code(openid="o_same")},
        content_type="application/json",
    ).json()
    assert second["created"] is False
    assert first["participant"]["id"] == second["participant"]["id"]
    assert Participant.objects.count() == 1


@pytest.mark.parametrize(
    ("setup", "status", "code"),
    [
        (lambda f: "never-issued", 400, "wechat_code_invalid"),
        (lambda f: f.issue_code(blocked=True), 403, "wechat_user_blocked"),
    ],
)
def test_login_errors_map_to_clear_4xx(client, fake_wechat, setup, status, code):
    response = client.post(
        "/api/v1/auth/wechat/", {"code": setup(fake_wechat)}, content_type="application/json"
    )
    assert_error(response, status, code)
    assert Participant.objects.count() == 0


def test_reused_code_is_refused(client, fake_wechat):
    code = fake_wechat.issue_code()
    client.post("/api/v1/auth/wechat/", {"code": code}, content_type="application/json")
    response = client.post("/api/v1/auth/wechat/", {"code": code}, content_type="application/json")
    assert_error(response, 400, "wechat_code_used")


def test_wechat_rate_limit_is_429(client, fake_wechat):
    fake_wechat.fail_next("errcode", errcode=45011)
    response = client.post(
        "/api/v1/auth/wechat/", {"code": fake_wechat.issue_code()}, content_type="application/json"
    )
    assert_error(response, 429, "wechat_rate_limited")


@pytest.mark.parametrize("mode", ["http500", "garbage", "drop"])
def test_wechat_down_is_503_with_retry_after(client, fake_wechat, mode):
    fake_wechat.fail_next(mode)
    response = client.post(
        "/api/v1/auth/wechat/", {"code": fake_wechat.issue_code()}, content_type="application/json"
    )
    assert_error(response, 503, "wechat_unavailable")
    assert int(response["Retry-After"]) > 0
    assert Participant.objects.count() == 0


def test_wechat_timeout_is_503(client, fake_wechat, settings):
    settings.WECHAT_TIMEOUT_SECONDS = 0.3
    fake_wechat.fail_next("timeout", seconds=2)
    response = client.post(
        "/api/v1/auth/wechat/", {"code": fake_wechat.issue_code()}, content_type="application/json"
    )
    assert_error(response, 503, "wechat_unavailable")


def test_login_needs_a_code(client, db):
    body = assert_error(
        client.post("/api/v1/auth/wechat/", {}, content_type="application/json"), 400, "invalid"
    )
    assert "code" in body["fields"]


def test_malformed_json_is_400(client, db):
    response = client.post("/api/v1/auth/wechat/", "{not json", content_type="application/json")
    assert_error(response, 400, "malformed_json")


# --- tokens -------------------------------------------------------------------------
def test_missing_forged_expired_and_revoked_tokens_are_refused(client, invitee, settings):
    assert_error(client.get("/api/v1/me/"), 401, "not_authenticated")
    assert_error(
        client.get("/api/v1/me/", HTTP_AUTHORIZATION="Bearer forged.token"), 401, "authentication_failed"
    )
    token = token_issue(participant_id=invitee.pk, token_version=invitee.token_version)
    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    settings.PARTICIPANT_TOKEN_TTL_SECONDS = -1  # every token is now past its age
    assert_error(
        client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {token}"), 401, "authentication_failed"
    )
    settings.PARTICIPANT_TOKEN_TTL_SECONDS = 3600
    Participant.objects.filter(pk=invitee.pk).update(token_version=2)  # "sign out everywhere"
    assert_error(
        client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {token}"), 401, "authentication_failed"
    )


# --- profile --------------------------------------------------------------------------
def test_nickname_and_avatar(api_as, invitee, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    api = api_as(invitee)
    assert (
        api.patch("/api/v1/me/", {"nickname": "  Ivy Chen "}, format="json").json()["nickname"] == "Ivy Chen"
    )
    response = api.post("/api/v1/me/avatar/", {"avatar": image_upload()}, format="multipart")
    assert response.status_code == 200, response.content
    assert response.json()["avatar_url"].startswith("http://testserver/media/avatars/")
    invitee.refresh_from_db()
    with Image.open(invitee.avatar.path) as stored:
        assert (stored.format, stored.size) == ("JPEG", (256, 256))


@pytest.mark.parametrize(
    ("upload", "status", "code"),
    [
        (
            SimpleUploadedFile("x.png", b"not an image at all", content_type="image/png"),
            400,
            "avatar_invalid",
        ),
        (image_upload(fmt="GIF", name="x.gif"), 400, "avatar_invalid"),
    ],
)
def test_bad_avatars_are_refused_and_change_nothing(
    api_as, invitee, upload, status, code, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    assert_error(
        api_as(invitee).post("/api/v1/me/avatar/", {"avatar": upload}, format="multipart"), status, code
    )
    invitee.refresh_from_db()
    assert not invitee.avatar


def test_oversized_avatar_is_413(api_as, invitee, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.FISSION_AVATAR_MAX_BYTES = 1000
    response = api_as(invitee).post(
        "/api/v1/me/avatar/", {"avatar": image_upload(size=(900, 900))}, format="multipart"
    )
    assert_error(response, 413, "avatar_too_large")


# --- sharing, opening, joining ----------------------------------------------------------
def shared_code(api, campaign) -> str:
    """Join, then ask for the share link: the mini program's order."""
    api.post(f"/api/v1/campaigns/{campaign.slug}/join", {}, format="json")
    return api.post(f"/api/v1/campaigns/{campaign.slug}/share-links/", {}, format="json").json()["code"]


def test_sharing_before_joining_is_409_join_first(api_as, live_campaign, sharer):
    response = api_as(sharer).post(f"/api/v1/campaigns/{live_campaign.slug}/share-links/", {}, format="json")
    assert "join" in assert_error(response, 409, "join_first")["message"].lower()
    assert ShareLink.objects.count() == 0 and Referral.objects.count() == 0


def test_share_link_create_then_same_again(api_as, live_campaign, sharer):
    api = api_as(sharer)
    api.post(f"/api/v1/campaigns/{live_campaign.slug}/join", {}, format="json")
    first = api.post(f"/api/v1/campaigns/{live_campaign.slug}/share-links/", {}, format="json")
    again = api.post(f"/api/v1/campaigns/{live_campaign.slug}/share-links/", {}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["code"] == again.json()["code"]
    body = first.json()
    assert len(body["scene"]) <= 32 and body["code"] in body["path"] and body["path"].startswith("/")
    assert body["poster_url"].endswith(f"/api/v1/share-links/{body['code']}/poster.png")


def test_share_link_errors(api_as, make_campaign, live_campaign, sharer):
    from campaigns.models import Campaign

    api = api_as(sharer)
    assert_error(
        api.post("/api/v1/campaigns/nope/share-links/", {}, format="json"), 404, "campaign_not_found"
    )
    draft = make_campaign(status=Campaign.Status.DRAFT)
    assert_error(
        api.post(f"/api/v1/campaigns/{draft.slug}/share-links/", {}, format="json"), 404, "campaign_not_found"
    )
    ended = make_campaign(status=Campaign.Status.ENDED)
    api.post(f"/api/v1/campaigns/{live_campaign.slug}/join", {}, format="json")
    assert_error(
        api.post(f"/api/v1/campaigns/{ended.slug}/share-links/", {}, format="json"), 409, "campaign_not_live"
    )
    response = api.post(
        f"/api/v1/campaigns/{live_campaign.slug}/share-links/", {"channel": "tv"}, format="json"
    )
    assert "channel" in assert_error(response, 400, "channel_unknown")["fields"]
    assert ShareLink.objects.count() == 0


def test_the_whole_path_open_join_referrals_progress(api_as, live_campaign, sharer, invitee, second_invitee):
    code = shared_code(api_as(sharer), live_campaign)
    ivy = api_as(invitee)
    opened = ivy.post(
        f"/api/v1/share-links/{code}/open",
        {"client_event_id": "open-1"},
        format="json",
        HTTP_USER_AGENT="MicroMessenger/8.0",
        HTTP_X_DEVICE_ID="ivy-phone",
    )
    assert opened.status_code == 201 and opened.json() == {"recorded": True}
    retry = ivy.post(f"/api/v1/share-links/{code}/open", {"client_event_id": "open-1"}, format="json")
    assert retry.status_code == 200 and retry.json() == {"recorded": False}
    assert ShareOpen.objects.get().user_agent == "MicroMessenger/8.0"

    joined = ivy.post(f"/api/v1/campaigns/{live_campaign.slug}/join", {"code": code}, format="json")
    assert joined.status_code == 201
    assert joined.json() | {"note": ""} == {
        "campaign": live_campaign.slug,
        "joined": True,
        "created": True,
        "attributed": True,
        "inviter": "Sam",
        "depth": 1,
        "status": "joined",
        "rule": "open_within_window",
        "note": "",
    }
    again = ivy.post(f"/api/v1/campaigns/{live_campaign.slug}/join", {"code": "other"}, format="json")
    assert again.status_code == 200 and "first attribution is kept" in again.json()["note"]

    mine = api_as(sharer).get("/api/v1/me/referrals/", {"campaign": live_campaign.slug}).json()
    assert mine["count"] == 1
    assert mine["results"][0]["invitee"]["nickname"] == "Ivy" and mine["results"][0]["status"] == "joined"
    # someone else's list does not include Sam's invitees
    assert api_as(second_invitee).get("/api/v1/me/referrals/").json()["count"] == 0

    progress = api_as(sharer).get(f"/api/v1/me/campaigns/{live_campaign.slug}/progress").json()
    assert progress["invited"] == 1 and progress["valid_invitees"] == 0
    assert progress["remaining"] == 3 and progress["message"] == "3 more friends to go"
    assert progress["tree"] == {"depth": 0, "is_root": True, "inviter": None}
    ivy_progress = ivy.get(f"/api/v1/me/campaigns/{live_campaign.slug}/progress").json()
    assert ivy_progress["tree"] == {"depth": 1, "is_root": False, "inviter": "Sam"}


def test_open_of_unknown_link_is_404(api_as, invitee):
    assert_error(
        api_as(invitee).post("/api/v1/share-links/nope/open", {}, format="json"), 404, "share_link_not_found"
    )


def test_self_referral_through_the_api(api_as, live_campaign, sharer, make_participant):
    code = shared_code(api_as(sharer), live_campaign)
    twin = make_participant()  # a second account on Sam's phone
    body = (
        api_as(twin)
        .post(
            f"/api/v1/campaigns/{live_campaign.slug}/join",
            {"code": code, "device_id": sharer.first_device_id},
            format="json",
        )
        .json()
    )
    assert body["attributed"] is False and body["rule"] == "self_referral"
    assert body["note"] == "the same device"


# --- posters ----------------------------------------------------------------------------
def test_poster_is_rendered_for_the_sharer_and_cached(
    api_as, live_campaign, sharer, make_template, invitee, django_assert_max_num_queries
):
    template = make_template(live_campaign, is_default=True)
    api = api_as(sharer)
    code = shared_code(api, live_campaign)
    response = api.get(f"/api/v1/share-links/{code}/poster.png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (400, 700)
    etag = response["ETag"]
    assert api.get(f"/api/v1/share-links/{code}/poster.png", HTTP_IF_NONE_MATCH=etag).status_code == 304
    # an edited template gets a new poster (new version, new ETag)
    template.qr_size = 150
    template.save()
    changed = api.get(f"/api/v1/share-links/{code}/poster.png")
    assert changed["ETag"] != etag
    # someone else cannot fetch Sam's poster
    assert_error(api_as(invitee).get(f"/api/v1/share-links/{code}/poster.png"), 404, "share_link_not_found")


# --- every route with an id answers 404 to a second participant -----------------------
def test_second_participant_gets_404_on_every_object_route(
    api_as, live_campaign, sharer, invitee, make_template
):
    make_template(live_campaign, is_default=True)
    code = shared_code(api_as(sharer), live_campaign)
    other = api_as(invitee)
    assert_error(other.get(f"/api/v1/share-links/{code}/poster.png"), 404, "share_link_not_found")
    # opening someone else's link is the point of a link: it is allowed, and attributed to them
    assert other.post(f"/api/v1/share-links/{code}/open", {}, format="json").status_code == 201
    assert Referral.objects.filter(invitee=invitee).count() == 0


# --- events ---------------------------------------------------------------------------------
def test_event_batch_over_http(api_as, live_campaign, invitee):
    now = timezone.now().isoformat()
    events = [{"id": f"e{i}", "type": "share", "time": now, "campaign": live_campaign.slug} for i in range(3)]
    api = api_as(invitee)
    first = api.post("/api/v1/events/", {"events": events}, format="json")
    assert first.status_code == 200
    assert first.json()["accepted"] == 3
    again = api.post("/api/v1/events/", {"events": events}, format="json")
    assert again.json() == first.json()  # byte-identical retry: the same batch, the same answer


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("{oops", 400, "malformed_json"),
        ("[]", 400, "batch_invalid"),
        ('{"events": []}', 400, "batch_empty"),
        ('{"events": [' + ",".join(['{"id":"x"}'] * 501) + "]}", 413, "batch_too_large"),
        ('{"events": [{"id": "a"}], "batch_id": 7}', 400, "batch_invalid"),
    ],
)
def test_bad_batches_get_clear_errors(api_as, invitee, body, status, code):
    response = api_as(invitee).post("/api/v1/events/", body, content_type="application/json")
    assert_error(response, status, code)


def test_oversized_batch_body_is_413(api_as, invitee, settings):
    settings.FISSION_EVENTS_MAX_BODY_BYTES = 1000
    body = '{"events": [{"id": "a", "pad": "' + "x" * 2000 + '"}]}'
    assert_error(
        api_as(invitee).post("/api/v1/events/", body, content_type="application/json"), 413, "body_too_large"
    )


def test_events_need_a_participant(client, db):
    assert_error(
        client.post("/api/v1/events/", {"events": []}, content_type="application/json"),
        401,
        "not_authenticated",
    )


def test_throttle_per_participant(api_as, invitee, make_participant, monkeypatch):
    from django.core.cache import cache

    from referrals.api.throttles import ParticipantRateThrottle

    cache.clear()
    monkeypatch.setattr(ParticipantRateThrottle, "THROTTLE_RATES", {"participant": "3/min"})
    try:
        api = api_as(invitee)
        statuses = [api.get("/api/v1/me/").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        assert_error(api.get("/api/v1/me/"), 429, "throttled")
        # another participant (even from the same address) is not held back
        assert api_as(make_participant()).get("/api/v1/me/").status_code == 200
    finally:
        cache.clear()


def test_events_late_by_days_are_rejected_with_a_reason(api_as, live_campaign, invitee):
    old = (timezone.now() - timedelta(days=30)).isoformat()
    body = (
        api_as(invitee)
        .post("/api/v1/events/", {"events": [{"id": "a", "type": "share", "time": old}]}, format="json")
        .json()
    )
    assert body["results"][0]["code"] == "event_too_old"


def test_event_endpoint_refuses_a_blocked_participant_at_once(api_as, live_campaign, invitee):
    api = api_as(invitee)
    now = timezone.now().isoformat()
    assert (
        api.post(
            "/api/v1/events/", {"events": [{"id": "a", "type": "x", "time": now}]}, format="json"
        ).status_code
        == 200
    )
    invitee.is_blocked = True
    invitee.save()  # as the admin does
    response = api.post("/api/v1/events/", {"events": [{"id": "b", "type": "x", "time": now}]}, format="json")
    assert_error(response, 401, "authentication_failed")


def test_a_share_code_resolves_to_its_campaign_and_sharer(api_as, live_campaign, sharer, invitee, client):
    code = shared_code(api_as(sharer), live_campaign)
    body = api_as(invitee).get(f"/api/v1/share-links/{code}/").json()
    assert body["campaign"] == live_campaign.slug and body["sharer"]["nickname"] == "Sam"
    assert "openid" not in str(body) and "session" not in str(body)
    assert_error(api_as(invitee).get("/api/v1/share-links/nope/"), 404, "share_link_not_found")
    # the poster's QR code leads to a page outside WeChat too
    page = client.get(f"/s/{code}")
    assert page.status_code == 200 and live_campaign.name in page.content.decode()
    assert client.get("/s/nope").status_code == 404


def test_post_to_a_wrong_api_url_is_a_json_404_not_a_csrf_page(api_as, invitee):
    response = api_as(invitee).post("/api/v1/events", {"events": []}, format="json")  # no trailing slash
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("nickname", ["two\nlines", "tab\there", "nul\x00"])
def test_nickname_is_one_line_of_text(api_as, invitee, nickname):
    response = api_as(invitee).patch("/api/v1/me/", {"nickname": nickname}, format="json")
    assert "nickname" in assert_error(response, 400, "invalid")["fields"]


def test_huge_avatar_body_is_refused_before_it_is_read(api_as, invitee, settings):
    settings.FISSION_AVATAR_MAX_BYTES = 1000
    big = SimpleUploadedFile("x.png", b"\x89PNG" + b"0" * 200_000, content_type="image/png")
    assert_error(
        api_as(invitee).post("/api/v1/me/avatar/", {"avatar": big}, format="multipart"),
        413,
        "avatar_too_large",
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/share-links/%00/open"),
        ("get", "/api/v1/share-links/%00/poster.png"),
        ("get", "/api/v1/share-links/a%0Ab/"),
        ("get", "/api/v1/share-links/" + "x" * 33 + "/"),
    ],
)
def test_junk_share_codes_are_json_404s(api_as, invitee, method, path):
    response = (
        getattr(api_as(invitee), method)(path, {}, format="json")
        if method == "post"
        else api_as(invitee).get(path)
    )
    assert_error(response, 404, "not_found")


def test_junk_campaign_filter_is_a_400(api_as, invitee):
    response = api_as(invitee).get("/api/v1/me/referrals/", {"campaign": "\x00bad"})
    assert "campaign" in assert_error(response, 400, "invalid")["fields"]
