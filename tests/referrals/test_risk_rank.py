"""referrals.wechat.risk_rank (getUserRiskRank + access token) against the fake WeChat, over real HTTP."""

import logging
import socket
import time

import httpx
import pytest
from django.core.cache import cache

from referrals import wechat
from referrals.wechat import WeChatError, WeChatUnavailable, risk_rank


@pytest.fixture(autouse=True)
def no_cached_token():
    cache.clear()
    yield
    cache.clear()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rank_of(openid: str = "o_alice") -> int:
    return risk_rank(openid=openid, client_ip="203.0.113.7")


def errcode_of(openid: str = "o_alice") -> int:
    with pytest.raises(WeChatError) as raised:
        rank_of(openid)
    return raised.value.errcode


# --- the rank --------------------------------------------------------------------------


@pytest.mark.parametrize("rank", [0, 1, 2, 3, 4])
def test_the_rank_set_for_an_openid_is_returned(fake_wechat, rank):
    # given
    fake_wechat.set_risk_rank("o_alice", rank)

    # when / then
    assert rank_of("o_alice") == rank


def test_an_openid_without_a_set_rank_is_0_and_ranks_are_per_openid(fake_wechat):
    fake_wechat.set_risk_rank("o_fraudster", 4)

    assert rank_of("o_someone") == 0
    assert rank_of("o_fraudster") == 4


def test_the_request_is_the_marketing_scene_with_the_app_openid_and_ip(fake_wechat, settings):
    # when
    risk_rank(openid="o_alice", client_ip="198.51.100.23")

    # then
    assert fake_wechat.risk_requests == [
        {"appid": settings.WECHAT_APP_ID, "openid": "o_alice", "scene": 1, "client_ip": "198.51.100.23"}
    ]


def test_another_scene_can_be_asked_for(fake_wechat):
    risk_rank(openid="o_alice", client_ip="198.51.100.23", scene=0)

    assert fake_wechat.risk_requests[0]["scene"] == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"openid": "", "client_ip": "198.51.100.23"},
        {"openid": "o_alice", "client_ip": ""},
        {"openid": "o_alice", "client_ip": "198.51.100.23", "scene": 7},
    ],
)
def test_a_bad_argument_is_refused_before_anything_is_sent(fake_wechat, kwargs):
    with pytest.raises(ValueError):
        risk_rank(**kwargs)

    assert fake_wechat.token_requests == 0
    assert fake_wechat.risk_rank_requests == 0


# --- the access token ------------------------------------------------------------------


def test_the_token_is_fetched_once_and_reused(fake_wechat):
    # when
    ranks = [rank_of(f"o_user_{n}") for n in range(3)]

    # then
    assert ranks == [0, 0, 0]
    assert fake_wechat.token_requests == 1
    assert fake_wechat.risk_rank_requests == 3


def test_the_cache_key_does_not_hold_the_secret(fake_wechat, settings):
    rank_of()

    key = wechat._token_cache_key()
    assert settings.WECHAT_APP_SECRET not in key
    assert cache.get(key)["token"] in fake_wechat.issued_tokens


def test_the_token_is_refreshed_shortly_before_it_expires(fake_wechat, monkeypatch):
    # given: a token valid 7200 s
    rank_of()
    now = time.time()

    # when: 6 minutes before expiry it is still used; 4 minutes before, a new one is fetched
    monkeypatch.setattr(wechat, "_clock", lambda: now + 7200 - 360)
    rank_of()
    assert fake_wechat.token_requests == 1
    monkeypatch.setattr(wechat, "_clock", lambda: now + 7200 - 240)
    rank_of()

    # then
    assert fake_wechat.token_requests == 2
    assert fake_wechat.risk_rank_requests == 3


def test_a_token_wechat_says_expired_is_refreshed_and_the_call_retried(fake_wechat):
    # given: our cache still trusts the token, WeChat's clock says it expired (42001)
    fake_wechat.set_risk_rank("o_alice", 2)
    rank_of()
    fake_wechat.advance(7201)

    # when
    rank = rank_of()

    # then
    assert rank == 2
    assert fake_wechat.token_requests == 2
    assert fake_wechat.risk_rank_requests == 3
    assert rank_of() == 2  # the fresh token is cached
    assert fake_wechat.token_requests == 2


def test_a_token_wechat_says_invalid_is_refreshed_and_the_call_retried(fake_wechat):
    # given: tokens revoked (40001), as after the secret is reset
    rank_of()
    fake_wechat.expire_tokens()

    # when / then
    assert rank_of() == 0
    assert fake_wechat.token_requests == 2


@pytest.mark.parametrize("errcode", [40001, 42001])
def test_the_token_is_refreshed_only_once(fake_wechat, errcode):
    # given: WeChat refuses the token, then the fresh one too
    fake_wechat.fail_next("errcode", errcode=errcode, times=2, endpoint="riskrank")

    # when
    assert errcode_of() == errcode

    # then
    assert fake_wechat.token_requests == 2
    assert fake_wechat.risk_rank_requests == 2


def test_a_refused_token_is_dropped_from_the_cache_even_when_the_refresh_fails(fake_wechat):
    # given: the cached token revoked, and the refresh failing
    rank_of()
    fake_wechat.expire_tokens()
    fake_wechat.fail_next("http500", endpoint="token")
    with pytest.raises(WeChatUnavailable):
        rank_of()

    # when
    rank = rank_of()

    # then: a fresh token first, not the refused one again
    assert rank == 0
    assert fake_wechat.token_requests == 3
    assert fake_wechat.risk_rank_requests == 3


def test_a_failed_token_fetch_is_not_cached(fake_wechat):
    fake_wechat.fail_next("http500", endpoint="token")
    with pytest.raises(WeChatUnavailable):
        rank_of()

    assert rank_of() == 0
    assert fake_wechat.token_requests == 2
    assert fake_wechat.risk_rank_requests == 1


def test_a_wrong_secret_is_a_wechat_error_from_the_token_endpoint(fake_wechat, settings):
    settings.WECHAT_APP_SECRET = "not-the-secret"

    assert errcode_of() == 40125
    assert fake_wechat.risk_rank_requests == 0


# --- failures --------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["token", "riskrank"])
@pytest.mark.parametrize("mode", ["http500", "garbage", "drop"])
def test_a_broken_answer_is_unavailable(fake_wechat, endpoint, mode):
    fake_wechat.fail_next(mode, endpoint=endpoint)

    with pytest.raises(WeChatUnavailable):
        rank_of()


@pytest.mark.parametrize("endpoint", ["token", "riskrank"])
def test_system_busy_is_unavailable(fake_wechat, endpoint):
    fake_wechat.fail_next("errcode", errcode=-1, endpoint=endpoint)

    with pytest.raises(WeChatUnavailable):
        rank_of()


@pytest.mark.parametrize("endpoint", ["token", "riskrank"])
def test_a_slow_wechat_is_unavailable_after_the_timeout(fake_wechat, settings, endpoint):
    # given
    settings.WECHAT_TIMEOUT_SECONDS = 0.3
    fake_wechat.fail_next("timeout", seconds=2, endpoint=endpoint)

    # when
    started = time.monotonic()
    with pytest.raises(WeChatUnavailable):
        rank_of()

    # then
    assert time.monotonic() - started < 1.5


def test_an_unreachable_wechat_is_unavailable_quickly(settings):
    settings.WECHAT_API_BASE = f"http://127.0.0.1:{free_port()}"

    started = time.monotonic()
    with pytest.raises(WeChatUnavailable):
        rank_of()

    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("endpoint", "errcode"), [("token", 45009), ("riskrank", 45011), ("riskrank", 40013)]
)
def test_an_errcode_is_a_wechat_error(fake_wechat, endpoint, errcode):
    fake_wechat.fail_next("errcode", errcode=errcode, endpoint=endpoint)

    assert errcode_of() == errcode


def test_failures_of_one_endpoint_leave_the_others_alone(fake_wechat):
    # given: a login failure queued
    fake_wechat.fail_next("http500")

    # when / then: the rank call does not take it, the next login does
    assert rank_of() == 0
    with pytest.raises(WeChatUnavailable):
        wechat.code2session(fake_wechat.issue_code())


# --- logs ------------------------------------------------------------------------------


def test_the_token_and_the_secret_stay_out_of_logs(fake_wechat, settings, caplog):
    # given: everything logged, httpx's request lines included
    for name in ("", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)

    # when: a fetch, a use, a refresh after revocation and an errcode
    rank_of()
    fake_wechat.expire_tokens()
    rank_of()
    fake_wechat.fail_next("errcode", errcode=45011, endpoint="riskrank")
    with pytest.raises(WeChatError):
        rank_of()

    # then
    tokens = fake_wechat.issued_tokens
    assert len(tokens) == 2
    for secret in (*tokens, settings.WECHAT_APP_SECRET):
        assert secret not in caplog.text
    assert "/cgi-bin/token" in caplog.text  # httpx's own lines, without the query
    assert "/wxa/getuserriskrank" in caplog.text
    assert "risk_rank=0" in caplog.text
    assert "errcode=45011" in caplog.text


# --- the fake, driven over HTTP ----------------------------------------------------------


def test_the_fake_is_driven_over_http(fake_wechat):
    with httpx.Client(base_url=fake_wechat.base_url, timeout=2) as control:
        control.post("/fake/risk_ranks", json={"openid": "o_scripted", "rank": 3}).raise_for_status()
        control.post(
            "/fake/failures", json={"mode": "errcode", "errcode": 45011, "endpoint": "riskrank"}
        ).raise_for_status()
        bad_rank = control.post("/fake/risk_ranks", json={"openid": "o_scripted", "rank": 9})

    assert bad_rank.status_code == 400
    assert errcode_of("o_scripted") == 45011
    assert rank_of("o_scripted") == 3


def test_the_fake_refuses_a_missing_or_unknown_token(fake_wechat):
    body = {"appid": fake_wechat.app_id, "openid": "o_alice", "scene": 1, "client_ip": "203.0.113.7"}
    with httpx.Client(base_url=fake_wechat.base_url, timeout=2) as client:
        missing = client.post("/wxa/getuserriskrank", json=body).json()
        unknown = client.post("/wxa/getuserriskrank", params={"access_token": "made-up"}, json=body).json()

    assert missing["errcode"] == 41001
    assert unknown["errcode"] == 40001
