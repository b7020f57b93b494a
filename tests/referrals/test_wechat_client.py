"""referrals.wechat against the fake WeChat, over real HTTP (nothing mocked)."""

import logging
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from fakes.wechat import DEFAULT_APP_ID, DEFAULT_SECRET, start_in_thread
from referrals import wechat
from referrals.wechat import WeChatError, WeChatUnavailable, code2session

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def errcode_of(code: str) -> int:
    with pytest.raises(WeChatError) as raised:
        code2session(code)
    return raised.value.errcode


# --- success ---------------------------------------------------------------------------


def test_a_code_gives_openid_session_key_and_unionid(fake_wechat):
    # given
    code = fake_wechat.issue_code(openid="o_alice_openid", unionid="u_alice")

    # when
    session = code2session(code)

    # then
    assert session.openid == "o_alice_openid"
    assert session.unionid == "u_alice"
    assert len(session.session_key) == 24
    assert fake_wechat.exchanges == 1


def test_without_a_unionid_the_session_has_an_empty_one(fake_wechat):
    code = fake_wechat.issue_code()

    session = code2session(code)

    assert session.unionid == ""
    assert session.openid.startswith("o")
    assert len(session.openid) == 28


def test_each_login_of_the_same_user_gets_a_fresh_session_key(fake_wechat):
    first = code2session(fake_wechat.issue_code(openid="o_bob"))
    second = code2session(fake_wechat.issue_code(openid="o_bob"))

    assert first.openid == second.openid == "o_bob"
    assert first.session_key != second.session_key


def test_demo_codes_work_again_and_again(fake_wechat):
    # given
    fake_wechat.demo_codes = True

    # when
    sessions = [code2session("demo-alice") for _ in range(3)]

    # then
    assert {(s.openid, s.unionid) for s in sessions} == {("o_demo_alice", "u_demo_alice")}


def test_demo_codes_are_refused_unless_enabled(fake_wechat):
    assert errcode_of("demo-alice") == 40029


# --- WeChat says no --------------------------------------------------------------------


def test_an_unknown_code_is_40029(fake_wechat):
    error_code = errcode_of("0a1b2c3d4e5f-never-issued")

    assert error_code == 40029


def test_a_code_used_once_already_is_40163(fake_wechat):
    # given
    code = fake_wechat.issue_code()
    code2session(code)

    # when / then
    assert errcode_of(code) == 40163


def test_a_code_older_than_five_minutes_is_40029(fake_wechat):
    # given
    code = fake_wechat.issue_code()

    # when
    fake_wechat.advance(301)

    # then
    assert errcode_of(code) == 40029


def test_a_code_just_under_five_minutes_old_still_works(fake_wechat):
    code = fake_wechat.issue_code(openid="o_slow")
    fake_wechat.advance(299)

    assert code2session(code).openid == "o_slow"


def test_a_high_risk_user_is_40226(fake_wechat):
    code = fake_wechat.issue_code(blocked=True)

    with pytest.raises(WeChatError) as raised:
        code2session(code)

    assert raised.value.errcode == 40226
    assert "high risk" in raised.value.errmsg


def test_more_than_100_exchanges_for_one_user_in_a_minute_is_45011(fake_wechat):
    # given: 100 logins of one user within the minute
    for _ in range(100):
        code2session(fake_wechat.issue_code(openid="o_busy"))

    # when / then
    assert errcode_of(fake_wechat.issue_code(openid="o_busy")) == 45011
    assert code2session(fake_wechat.issue_code(openid="o_someone_else")).openid == "o_someone_else"
    fake_wechat.advance(60)
    assert code2session(fake_wechat.issue_code(openid="o_busy")).openid == "o_busy"


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [("WECHAT_APP_ID", "wx0000000000000000", 40013), ("WECHAT_APP_SECRET", "not-the-secret", 40125)],
)
def test_wrong_credentials_are_refused(fake_wechat, settings, setting, value, expected):
    # given
    code = fake_wechat.issue_code()
    setattr(settings, setting, value)

    # when / then
    assert errcode_of(code) == expected


@pytest.mark.parametrize("errcode", [45011, 40226, 40029])
def test_an_injected_errcode_is_a_wechat_error(fake_wechat, errcode):
    fake_wechat.fail_next("errcode", errcode=errcode)

    assert errcode_of(fake_wechat.issue_code()) == errcode


# --- WeChat is not there ---------------------------------------------------------------


def test_system_busy_is_unavailable(fake_wechat):
    fake_wechat.fail_next("errcode", errcode=-1)

    with pytest.raises(WeChatUnavailable) as raised:
        code2session(fake_wechat.issue_code())

    assert raised.value.retry_after == 5


@pytest.mark.parametrize("mode", ["http500", "garbage", "drop"])
def test_a_broken_answer_is_unavailable(fake_wechat, mode):
    fake_wechat.fail_next(mode)

    with pytest.raises(WeChatUnavailable):
        code2session(fake_wechat.issue_code())


def test_a_slow_wechat_is_unavailable_after_the_timeout(fake_wechat, settings):
    # given
    settings.WECHAT_TIMEOUT_SECONDS = 0.3
    fake_wechat.fail_next("timeout", seconds=2)

    # when
    started = time.monotonic()
    with pytest.raises(WeChatUnavailable):
        code2session(fake_wechat.issue_code())

    # then
    assert time.monotonic() - started < 1.5


def test_an_unreachable_wechat_is_unavailable_quickly(settings):
    # given: nobody listens on that port
    settings.WECHAT_API_BASE = f"http://127.0.0.1:{free_port()}"

    # when
    started = time.monotonic()
    with pytest.raises(WeChatUnavailable):
        code2session("any-code")

    # then
    assert time.monotonic() - started < 1.0


def test_failures_are_consumed_one_per_request_in_order(fake_wechat):
    # given
    fake_wechat.fail_next("http500")
    fake_wechat.fail_next("errcode", times=2, errcode=45011)
    code = fake_wechat.issue_code(openid="o_patient")

    # when / then
    with pytest.raises(WeChatUnavailable):
        code2session(code)
    assert errcode_of(code) == 45011
    assert errcode_of(code) == 45011
    assert code2session(code).openid == "o_patient"
    assert fake_wechat.exchanges == 4


def test_a_slow_answer_does_not_hold_up_other_logins(fake_wechat):
    # given: the next answer takes a second
    fake_wechat.fail_next("timeout", seconds=1)
    slow_result = {}
    slow = threading.Thread(
        target=lambda: slow_result.update(session=code2session(fake_wechat.issue_code(openid="o_slow")))
    )
    slow.start()
    time.sleep(0.1)

    # when
    started = time.monotonic()
    fast = code2session(fake_wechat.issue_code(openid="o_fast"))

    # then
    assert time.monotonic() - started < 0.5
    assert fast.openid == "o_fast"
    slow.join(timeout=5)
    assert slow_result["session"].openid == "o_slow"


# --- the client ------------------------------------------------------------------------


def test_the_session_key_the_secret_and_the_code_stay_out_of_logs(fake_wechat, settings, caplog):
    # given: everything logged, even httpx's request lines that settings keep quiet
    for name in ("", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    code = fake_wechat.issue_code(unionid="u_private")

    # when
    session = code2session(code)
    with pytest.raises(WeChatError):
        code2session(code)

    # then
    for secret in (session.session_key, settings.WECHAT_APP_SECRET, code):
        assert secret not in caplog.text
        assert secret not in repr(session)
    assert "errcode=0" in caplog.text
    assert "errcode=40163" in caplog.text
    assert "elapsed_ms=" in caplog.text
    assert "/sns/jscode2session" in caplog.text  # httpx's own line, without the query


def test_one_client_is_reused_and_rebuilt_when_the_base_url_changes(fake_wechat, settings):
    # given
    code2session(fake_wechat.issue_code())
    client = wechat._http()
    other = start_in_thread(port=0)
    try:
        # when
        settings.WECHAT_API_BASE = other.base_url
        session = code2session(other.issue_code(openid="o_elsewhere"))

        # then
        assert session.openid == "o_elsewhere"
        assert wechat._http() is not client
        assert wechat._http() is wechat._http()
        assert client.is_closed
    finally:
        other.shutdown()


# --- the fake on its own ---------------------------------------------------------------


def test_the_fake_does_not_need_django():
    result = subprocess.run(
        [sys.executable, "-c", "import sys, fakes.wechat; assert 'django' not in sys.modules"],
        cwd=ROOT,
        capture_output=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 0, result.stderr.decode()


def test_a_separately_running_fake_is_driven_over_http(settings):
    # given: `python -m fakes.wechat` in its own process
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "fakes.wechat", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    settings.WECHAT_API_BASE = base
    settings.WECHAT_APP_ID, settings.WECHAT_APP_SECRET = DEFAULT_APP_ID, DEFAULT_SECRET
    try:
        with httpx.Client(base_url=base, timeout=2) as control:
            deadline = time.monotonic() + 15
            while True:
                try:
                    if control.get("/healthz").json() == {"ok": True}:
                        break
                except httpx.TransportError:
                    assert process.poll() is None, process.stderr.read().decode()
                    assert time.monotonic() < deadline, "the fake did not start"
                    time.sleep(0.05)

            # when
            issued = control.post("/fake/codes", json={"unionid": "u_script"}).json()
            session = code2session(issued["code"])
            control.post("/fake/failures", json={"mode": "errcode", "errcode": 40226}).raise_for_status()
            refused = errcode_of(control.post("/fake/codes", json={}).json()["code"])
            control.post("/fake/reset").raise_for_status()
            after_reset = errcode_of(issued["code"])

        # then
        assert session.openid == issued["openid"]
        assert session.unionid == "u_script" == issued["unionid"]
        assert refused == 40226
        assert after_reset == 40029
    finally:
        process.terminate()
        process.wait(timeout=5)
        process.stderr.close()
