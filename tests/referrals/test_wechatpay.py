"""referrals.wechatpay against the fake WeChat Pay, over real HTTP (nothing mocked): API v3
RSA signatures both ways and AES-256-GCM callbacks, with the dev key set of var/wechatpay-dev/."""

import base64
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from fakes.wechatpay import (
    DEFAULT_API_KEY,
    DEFAULT_MCHID,
    callback_body,
    callback_headers,
    dev_keys,
    load_private_key,
    load_public_key,
    new_private_key_pem,
    start_in_thread,
)
from referrals import wechatpay
from referrals.wechatpay import (
    MIN_FEN,
    USER_DAILY_LIMIT_FEN,
    CallbackInvalid,
    TransferRejected,
    TransferUnknown,
    query,
    transfer,
    verify_callback,
)

ROOT = Path(__file__).resolve().parents[2]
DAY = 24 * 3600
OTHER_API_V3_KEY = "another-merchant-apiv3-key-32byt"


@pytest.fixture
def fake_wechatpay(settings):
    """A fake WeChat Pay on a free port, and the settings pointing at it."""
    fake = start_in_thread(port=0)
    settings.WECHATPAY_API_BASE = fake.base_url
    settings.WECHATPAY_MCHID = fake.mchid
    settings.WECHATPAY_API_KEY = fake.api_key
    settings.WECHATPAY_TIMEOUT_SECONDS = 5
    for name in ("PRIVATE_KEY_PATH", "CERT_SERIAL", "PUBLIC_KEY_PATH", "PUBLIC_KEY_ID"):
        setattr(settings, f"WECHATPAY_{name}", "")  # the dev key set, as the fake
    yield fake
    fake.shutdown()


class _CallbackHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append((dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):
        pass


@pytest.fixture
def callbacks(fake_wechatpay):
    """A tiny receiver for the fake's callbacks: a list of (headers, body), filled as they arrive."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CallbackHandler)
    server.daemon_threads = True
    server.received = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake_wechatpay.callback_url = f"http://127.0.0.1:{server.server_address[1]}/wechatpay/callback"
    yield server.received
    server.shutdown()
    server.server_close()


@pytest.fixture
def other_key_path(tmp_path) -> Path:
    """A private key that is neither the merchant's nor WeChat Pay's."""
    path = tmp_path / "other_private_key.pem"
    path.write_bytes(new_private_key_pem())
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def pay(out_bill_no: str, openid: str = "o_alice", amount_fen: int = 500, remark: str = "邀请奖励"):
    return transfer(out_bill_no=out_bill_no, openid=openid, amount_fen=amount_fen, remark=remark)


def rejection(out_bill_no: str, openid: str = "o_alice", amount_fen: int = 500, remark: str = "邀请奖励"):
    with pytest.raises(TransferRejected) as raised:
        pay(out_bill_no, openid, amount_fen, remark)
    return raised.value


# --- money moves -----------------------------------------------------------------------


def test_a_transfer_succeeds_at_once_and_moves_the_money(fake_wechatpay):
    # when
    result = pay("R1", openid="o_alice", amount_fen=1234)

    # then
    assert result.state == "SUCCESS"
    assert result.final
    assert (result.out_bill_no, result.amount_fen, result.openid) == ("R1", 1234, "o_alice")
    assert result.transfer_bill_no
    assert result.create_time.endswith("+08:00")
    assert fake_wechatpay.paid_fen("o_alice") == 1234
    assert fake_wechatpay.transfers_created == 1


def test_the_same_bill_number_twice_pays_once(fake_wechatpay):
    # given
    first = pay("R2", amount_fen=800)

    # when
    second = pay("R2", amount_fen=800)

    # then
    assert second == first
    assert fake_wechatpay.paid_fen("o_alice") == 800
    assert fake_wechatpay.transfers_created == 1


@pytest.mark.parametrize(
    "other", [{"amount_fen": 801}, {"openid": "o_mallory"}, {"remark": "another reward"}]
)
def test_a_bill_number_reused_with_other_content_is_rejected_and_pays_nothing_more(fake_wechatpay, other):
    # given
    pay("R3", amount_fen=800)

    # when
    refused = rejection("R3", **{"openid": "o_alice", "amount_fen": 800, "remark": "邀请奖励", **other})

    # then
    assert refused.code == "PARAM_ERROR"
    assert "reused" in refused.message
    assert fake_wechatpay.total_paid_fen() == 800
    assert fake_wechatpay.bill("R3")["transfer_amount"] == 800


@pytest.mark.parametrize("amount_fen", [0, 1, MIN_FEN - 1, -500])
def test_less_than_ten_fen_is_rejected(fake_wechatpay, amount_fen):
    refused = rejection("R4", amount_fen=amount_fen)

    assert refused.code == "PARAM_ERROR"
    assert fake_wechatpay.bill("R4") is None
    assert fake_wechatpay.total_paid_fen() == 0


def test_exactly_ten_fen_is_paid(fake_wechatpay):
    assert pay("R5", amount_fen=MIN_FEN).state == "SUCCESS"


@pytest.mark.parametrize("out_bill_no", ["", "has-dash", "x" * 33, "../../fake/reset", "空"])
def test_a_malformed_bill_number_is_rejected_before_any_request(fake_wechatpay, out_bill_no):
    with pytest.raises(TransferRejected) as raised:
        query(out_bill_no=out_bill_no)
    assert raised.value.code == "PARAM_ERROR"

    assert rejection(out_bill_no).code == "PARAM_ERROR"
    assert fake_wechatpay.requests == 0


def test_a_user_gets_at_most_20000_yuan_a_day(fake_wechatpay):
    # given: ¥19,999.95 paid to alice today
    pay("D1", amount_fen=USER_DAILY_LIMIT_FEN - 5)

    # when
    refused = rejection("D2", amount_fen=10)

    # then: alice is refused, nothing moved; bob is not; tomorrow alice is paid again
    assert refused.code == "QUOTA_EXCEED"
    assert fake_wechatpay.bill("D2") is None
    assert fake_wechatpay.paid_fen("o_alice") == USER_DAILY_LIMIT_FEN - 5
    assert pay("D3", openid="o_bob", amount_fen=10).state == "SUCCESS"
    fake_wechatpay.advance(DAY)
    assert pay("D2", amount_fen=10).state == "SUCCESS"


def test_the_merchant_daily_cap_is_not_enough(fake_wechatpay):
    # given
    fake_wechatpay.merchant_daily_limit_fen = 1000
    pay("M1", openid="o_alice", amount_fen=600)

    # when
    refused = rejection("M2", openid="o_bob", amount_fen=401)

    # then
    assert refused.code == "NOT_ENOUGH"
    assert fake_wechatpay.total_paid_fen() == 600
    assert pay("M3", openid="o_bob", amount_fen=400).state == "SUCCESS"


def test_a_request_signed_with_another_key_is_a_sign_error_and_creates_nothing(
    fake_wechatpay, settings, other_key_path
):
    # given: our requests signed with a key that is not the merchant certificate's
    settings.WECHATPAY_PRIVATE_KEY_PATH = str(other_key_path)
    settings.WECHATPAY_CERT_SERIAL = dev_keys().merchant_cert_serial

    # when / then: a (signed, so trusted) refusal, and no bill
    assert rejection("K1").code == "SIGN_ERROR"
    assert fake_wechatpay.bill("K1") is None
    with pytest.raises(TransferRejected) as raised:
        query(out_bill_no="K1")
    assert raised.value.code == "SIGN_ERROR"


def test_a_request_naming_another_certificate_is_a_sign_error(fake_wechatpay, settings):
    settings.WECHATPAY_PRIVATE_KEY_PATH = str(dev_keys().merchant_private_key_path)
    settings.WECHATPAY_CERT_SERIAL = "0" * 40

    assert rejection("K2").code == "SIGN_ERROR"
    assert fake_wechatpay.bill("K2") is None


def test_the_request_signature_is_wechatpay_v3_rsa(settings):
    """Checked here without the fake, so the client and the fake cannot be wrong together."""
    # given: a server that records what it gets and answers 500
    seen = []

    class Recorder(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            seen.append((self.command, self.path, dict(self.headers), b""))
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append((self.command, self.path, dict(self.headers), body))
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    settings.WECHATPAY_API_BASE = f"http://127.0.0.1:{server.server_address[1]}"
    settings.WECHATPAY_MCHID = "1230000109"
    keys = dev_keys()
    for name in ("PRIVATE_KEY_PATH", "CERT_SERIAL", "PUBLIC_KEY_PATH", "PUBLIC_KEY_ID"):
        setattr(settings, f"WECHATPAY_{name}", "")
    try:
        # when
        with pytest.raises(TransferUnknown):
            pay("V1", amount_fen=700)
        with pytest.raises(TransferUnknown):
            query(out_bill_no="V1")
    finally:
        server.shutdown()
        server.server_close()

    # then: each request is signed over METHOD, path, timestamp, nonce and body
    merchant_public_key = load_public_key(keys.merchant_public_key_path)
    assert [(method, path) for method, path, _, _ in seen] == [
        ("POST", "/v3/fund-app/mch-transfer/transfer-bills"),
        ("GET", "/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/V1"),
    ]
    for method, path, headers, body in seen:
        scheme, _, params = headers["Authorization"].partition(" ")
        fields = dict(part.split("=", 1) for part in params.split(","))
        fields = {name: value.strip('"') for name, value in fields.items()}
        assert scheme == "WECHATPAY2-SHA256-RSA2048"
        assert set(fields) == {"mchid", "nonce_str", "signature", "timestamp", "serial_no"}
        assert (fields["mchid"], fields["serial_no"]) == ("1230000109", keys.merchant_cert_serial)
        assert abs(int(fields["timestamp"]) - time.time()) < 60
        assert headers["Wechatpay-Serial"] == keys.platform_public_key_id
        message = f"{method}\n{path}\n{fields['timestamp']}\n{fields['nonce_str']}\n".encode() + body + b"\n"
        merchant_public_key.verify(  # raises InvalidSignature if not
            base64.b64decode(fields["signature"]), message, padding.PKCS1v15(), hashes.SHA256()
        )
    assert json.loads(seen[0][3])["transfer_amount"] == 700


def test_every_answer_of_the_fake_is_signed_with_the_platform_key(fake_wechatpay):
    answer = httpx.get(f"{fake_wechatpay.base_url}/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/Z1")

    assert answer.status_code == 401  # not signed by the merchant
    assert answer.json()["code"] == "SIGN_ERROR"
    headers = answer.headers
    assert headers["Wechatpay-Serial"] == dev_keys().platform_public_key_id
    message = (
        f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n".encode() + answer.content + b"\n"
    )
    load_public_key(dev_keys().platform_public_key_path).verify(
        base64.b64decode(headers["Wechatpay-Signature"]), message, padding.PKCS1v15(), hashes.SHA256()
    )


def test_a_success_signed_with_another_platform_key_is_unknown_not_success(fake_wechatpay, other_key_path):
    # given: answers signed by somebody who is not WeChat Pay
    fake_wechatpay.platform_private_key = load_private_key(other_key_path)

    # when
    with pytest.raises(TransferUnknown) as raised:
        pay("A1", amount_fen=600)

    # then: not a success, not a refusal: the money did move, and a trusted query says so
    assert "bad signature" in raised.value.reason
    assert fake_wechatpay.paid_fen("o_alice") == 600
    fake_wechatpay.platform_private_key = load_private_key(dev_keys().platform_private_key_path)
    assert query(out_bill_no="A1").state == "SUCCESS"


def test_a_refusal_signed_with_another_platform_key_is_unknown_not_a_refusal(fake_wechatpay, other_key_path):
    fake_wechatpay.platform_private_key = load_private_key(other_key_path)

    with pytest.raises(TransferUnknown) as raised:
        pay("A2", amount_fen=1)  # PARAM_ERROR, if it could be believed

    assert "PARAM_ERROR" in raised.value.reason
    assert "bad signature" in raised.value.reason


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        pytest.param(lambda fake: setattr(fake, "signature_time_offset", -330), "5 minutes", id="stale"),
        pytest.param(lambda fake: setattr(fake, "signature_time_offset", 330), "5 minutes", id="future"),
        pytest.param(
            lambda fake: setattr(fake, "platform_public_key_id", "PUB_KEY_ID_0" + "9" * 32),
            "Wechatpay-Serial",
            id="serial",
        ),
    ],
)
def test_a_stale_or_wrongly_labelled_answer_is_unknown(fake_wechatpay, tamper, problem):
    tamper(fake_wechatpay)

    with pytest.raises(TransferUnknown) as raised:
        pay("A3", amount_fen=600)

    assert problem in raised.value.reason
    assert fake_wechatpay.paid_fen("o_alice") == 600


def test_an_answer_a_little_late_is_still_trusted(fake_wechatpay):
    fake_wechatpay.signature_time_offset = -290

    assert pay("A4").state == "SUCCESS"


def test_an_unsigned_answer_is_unknown(settings):
    # given: a server that says SUCCESS, without signing it
    body = json.dumps(
        {"out_bill_no": "A5", "transfer_bill_no": "1", "state": "SUCCESS", "transfer_amount": 500}
    ).encode()

    class Liar(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Liar)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    settings.WECHATPAY_API_BASE = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(TransferUnknown) as raised:
            pay("A5")
    finally:
        server.shutdown()
        server.server_close()

    assert "missing Wechatpay" in raised.value.reason


def test_a_bill_never_created_is_not_found(fake_wechatpay):
    with pytest.raises(TransferRejected) as raised:
        query(out_bill_no="NEVER1")

    assert raised.value.code == "NOT_FOUND"


# --- money does not move, or nobody knows ----------------------------------------------


def test_a_failed_transfer_is_final_and_moves_no_money(fake_wechatpay):
    # given
    fake_wechatpay.fail_next("fail")

    # when
    result = pay("F1", amount_fen=700)

    # then: confirmed failure, so a new bill number is safe
    assert (result.state, result.fail_reason, result.final) == ("FAIL", "ACCOUNT_FROZEN", True)
    assert query(out_bill_no="F1").state == "FAIL"
    assert fake_wechatpay.paid_fen("o_alice") == 0
    assert pay("F2", amount_fen=700).state == "SUCCESS"
    assert fake_wechatpay.paid_fen("o_alice") == 700


def test_a_timeout_after_paying_is_unknown_yet_the_money_moved_and_query_tells(fake_wechatpay, settings):
    # given: the fake pays, then answers only after 2 s; we wait 0.3 s
    settings.WECHATPAY_TIMEOUT_SECONDS = 0.3
    fake_wechatpay.fail_next("timeout_after_paying", seconds=2)

    # when
    started = time.monotonic()
    with pytest.raises(TransferUnknown) as raised:
        pay("T1", amount_fen=900)

    # then: we do not know, the fake does: paid. Query says so, and a retry of the same bill pays nothing more
    assert time.monotonic() - started < 1.5
    assert raised.value.retry_after >= 1
    assert fake_wechatpay.paid_fen("o_alice") == 900
    assert query(out_bill_no="T1").state == "SUCCESS"
    assert pay("T1", amount_fen=900).state == "SUCCESS"
    assert fake_wechatpay.paid_fen("o_alice") == 900
    assert fake_wechatpay.transfers_created == 1


@pytest.mark.parametrize(("mode", "retry_after"), [("rate_limited", 1), ("http500", 5)])
def test_a_429_or_a_500_is_unknown_with_a_retry_after(fake_wechatpay, mode, retry_after):
    # given
    fake_wechatpay.fail_next(mode)

    # when
    with pytest.raises(TransferUnknown) as raised:
        pay("U1")

    # then: nothing was created here, and retrying the same bill pays once
    assert raised.value.retry_after == retry_after
    assert fake_wechatpay.bill("U1") is None
    assert pay("U1").state == "SUCCESS"
    assert fake_wechatpay.paid_fen("o_alice") == 500


def test_a_query_can_be_unknown_too(fake_wechatpay):
    pay("U2")
    fake_wechatpay.fail_next("http500")

    with pytest.raises(TransferUnknown):
        query(out_bill_no="U2")

    assert query(out_bill_no="U2").state == "SUCCESS"


def test_a_garbage_answer_is_unknown(fake_wechatpay):
    fake_wechatpay.fail_next("garbage")

    with pytest.raises(TransferUnknown) as raised:
        pay("G1")

    assert "unparseable" in raised.value.reason


def test_an_unreachable_wechatpay_is_unknown_quickly(settings):
    # given: nobody listens on that port
    settings.WECHATPAY_API_BASE = f"http://127.0.0.1:{free_port()}"

    # when
    started = time.monotonic()
    with pytest.raises(TransferUnknown) as raised:
        pay("X1")

    # then
    assert time.monotonic() - started < 1.0
    assert raised.value.reason == "ConnectError"


def test_bill_shaping_failures_wait_for_a_transfer_that_creates_a_bill(fake_wechatpay):
    # given: a failure queued, and a query and a replay come first
    pay("Q1")
    fake_wechatpay.fail_next("fail")
    query(out_bill_no="Q1")
    pay("Q1")

    # when
    result = pay("Q2")

    # then
    assert result.state == "FAIL"
    assert query(out_bill_no="Q1").state == "SUCCESS"


# --- the user confirms -----------------------------------------------------------------


def test_wait_user_confirm_then_confirm_pays(fake_wechatpay):
    # given
    fake_wechatpay.fail_next("wait_user_confirm")
    waiting = pay("W1", amount_fen=300)
    assert (waiting.state, waiting.final) == ("WAIT_USER_CONFIRM", False)
    assert waiting.package_info
    assert fake_wechatpay.paid_fen("o_alice") == 0

    # when
    fake_wechatpay.confirm("W1")

    # then
    assert query(out_bill_no="W1").state == "SUCCESS"
    assert fake_wechatpay.paid_fen("o_alice") == 300


def test_wait_user_confirm_then_expire_cancels(fake_wechatpay):
    fake_wechatpay.fail_next("wait_user_confirm")
    pay("W2", amount_fen=300)

    fake_wechatpay.expire("W2")

    result = query(out_bill_no="W2")
    assert (result.state, result.final) == ("CANCELLED", True)
    assert fake_wechatpay.paid_fen("o_alice") == 0
    with pytest.raises(ValueError, match="not waiting"):
        fake_wechatpay.confirm("W2")


def test_an_unconfirmed_transfer_is_cancelled_after_24_hours(fake_wechatpay):
    # given
    fake_wechatpay.fail_next("wait_user_confirm", times=2)
    pay("W3")
    pay("W4")

    # when / then
    fake_wechatpay.confirm("W4")
    fake_wechatpay.advance(DAY - 1)
    assert query(out_bill_no="W3").state == "WAIT_USER_CONFIRM"
    fake_wechatpay.advance(1)
    assert query(out_bill_no="W3").state == "CANCELLED"
    assert query(out_bill_no="W4").state == "SUCCESS"
    assert fake_wechatpay.paid_fen("o_alice") == 500


def test_an_unconfirmed_transfer_counts_against_the_daily_limit(fake_wechatpay):
    fake_wechatpay.fail_next("wait_user_confirm")
    pay("W5", amount_fen=USER_DAILY_LIMIT_FEN)

    assert rejection("W6", amount_fen=MIN_FEN).code == "QUOTA_EXCEED"
    fake_wechatpay.expire("W5")
    assert pay("W6", amount_fen=MIN_FEN).state == "SUCCESS"


# --- callbacks -------------------------------------------------------------------------


def test_a_callback_is_signed_and_verifies(fake_wechatpay, callbacks):
    # given
    result = pay("C1", amount_fen=1500)

    # when
    wait_for(lambda: len(callbacks) == 1)
    headers, body = callbacks[0]

    # then: an encrypted envelope, which decrypts to the bill
    envelope = json.loads(body)
    assert (envelope["resource_type"], envelope["event_type"]) == (
        "encrypt-resource",
        "MCHTRANSFER.BILL.FINISHED",
    )
    assert {"id", "create_time", "summary"} <= set(envelope)
    assert envelope["resource"]["algorithm"] == "AEAD_AES_256_GCM"
    assert envelope["resource"]["original_type"] == "mch_payment"
    assert b"o_alice" not in body and b"1500" not in body
    assert headers["Wechatpay-Serial"] == dev_keys().platform_public_key_id
    data = verify_callback(headers, body)
    assert {k: data[k] for k in wechatpay.CALLBACK_FIELDS} == {
        "out_bill_no": "C1",
        "transfer_bill_no": result.transfer_bill_no,
        "state": "SUCCESS",
        "transfer_amount": 1500,
        "openid": "o_alice",
        "update_time": result.update_time,
    }
    assert data["mch_id"] == DEFAULT_MCHID


def test_a_callback_verifies_from_django_style_meta_names(fake_wechatpay, callbacks):
    pay("C2")
    wait_for(lambda: len(callbacks) == 1)
    headers, body = callbacks[0]

    meta = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}

    assert verify_callback(meta, body)["out_bill_no"] == "C2"


def test_waiting_and_confirmation_are_called_back_in_order(fake_wechatpay, callbacks):
    fake_wechatpay.fail_next("wait_user_confirm")
    pay("C3")
    fake_wechatpay.confirm("C3")

    wait_for(lambda: len(callbacks) == 2)

    assert [verify_callback(h, b)["state"] for h, b in callbacks] == ["WAIT_USER_CONFIRM", "SUCCESS"]


BILL = {
    "out_bill_no": "C5",
    "transfer_bill_no": "1330000000000000000000000000001",
    "state": "SUCCESS",
    "mch_id": DEFAULT_MCHID,
    "transfer_amount": 10,
    "openid": "o",
    "create_time": "2027-02-03T10:00:00+08:00",
    "update_time": "2027-02-03T10:00:01+08:00",
}


def _forged(body: bytes, **kwargs) -> tuple[dict, bytes]:
    """`body`, signed with the dev platform key (unless `private_key=`)."""
    return callback_headers(body, **kwargs), body


def _resealed(body: bytes, change: Callable[[dict], None]) -> bytes:
    envelope = json.loads(body)
    change(envelope["resource"])
    return json.dumps(envelope).encode()


def _flip_a_ciphertext_bit(resource: dict) -> None:
    sealed = bytearray(base64.b64decode(resource["ciphertext"]))
    sealed[5] ^= 0x01
    resource["ciphertext"] = base64.b64encode(bytes(sealed)).decode()


def _other_platform_key():
    return serialization.load_pem_private_key(new_private_key_pem(), password=None)


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda h, b: (h, b.replace(b'"nonce":"', b'"nonce":"x')), id="tampered-body"),
        pytest.param(
            lambda h, b: _forged(_resealed(b, _flip_a_ciphertext_bit)), id="tampered-ciphertext-resigned"
        ),
        pytest.param(
            lambda h, b: _forged(_resealed(b, lambda r: r.update(associated_data="transfer"))),
            id="other-associated-data-resigned",
        ),
        pytest.param(
            lambda h, b: _forged(_resealed(b, lambda r: r.update(nonce="AAAAAAAAAAAA"))),
            id="other-aes-nonce-resigned",
        ),
        pytest.param(lambda h, b: _forged(callback_body(OTHER_API_V3_KEY, BILL)), id="other-apiv3-key"),
        pytest.param(
            lambda h, b: ({**h, "Wechatpay-Signature": base64.b64encode(b"\0" * 256).decode()}, b),
            id="wrong-signature",
        ),
        pytest.param(lambda h, b: ({**h, "Wechatpay-Signature": "not base64!"}, b), id="garbled-signature"),
        pytest.param(lambda h, b: ({**h, "Wechatpay-Nonce": "other"}, b), id="other-nonce"),
        pytest.param(lambda h, b: _forged(b, private_key=_other_platform_key()), id="other-platform-key"),
        pytest.param(
            lambda h, b: ({**h, "Wechatpay-Serial": "PUB_KEY_ID_0" + "1" * 32}, b), id="wrong-serial"
        ),
        pytest.param(lambda h, b: _forged(b, serial="PUB_KEY_ID_0" + "1" * 32), id="wrong-serial-resigned"),
        pytest.param(lambda h, b: _forged(b, timestamp=int(time.time()) - 330), id="stale"),
        pytest.param(lambda h, b: _forged(b, timestamp=int(time.time()) + 330), id="from-the-future"),
        pytest.param(
            lambda h, b: ({k: v for k, v in h.items() if k != "Wechatpay-Signature"}, b), id="unsigned"
        ),
        pytest.param(lambda h, b: _forged(b"not json"), id="signed-garbage"),
        pytest.param(lambda h, b: _forged(json.dumps(BILL).encode()), id="signed-but-not-encrypted"),
        pytest.param(
            lambda h, b: _forged(callback_body(DEFAULT_API_KEY, {"out_bill_no": "C9"})),
            id="encrypted-incomplete",
        ),
        pytest.param(
            lambda h, b: _forged(callback_body(DEFAULT_API_KEY, {**BILL, "transfer_amount": "10"})),
            id="encrypted-amount-not-a-number",
        ),
        pytest.param(
            lambda h, b: _forged(callback_body(DEFAULT_API_KEY, {**BILL, "mch_id": "1900000999"})),
            id="another-merchant",
        ),
    ],
)
def test_a_tampered_forged_or_stale_callback_is_invalid(fake_wechatpay, callbacks, forge):
    # given: a genuine callback
    pay("C4", amount_fen=1500)
    wait_for(lambda: len(callbacks) == 1)
    headers, body = callbacks[0]
    verify_callback(headers, body)

    # when
    forged_headers, forged_body = forge(headers, body)

    # then
    with pytest.raises(CallbackInvalid):
        verify_callback(forged_headers, forged_body)


def test_a_callback_a_little_late_still_verifies(fake_wechatpay):
    body = callback_body(DEFAULT_API_KEY, BILL)

    assert verify_callback(*_forged(body, timestamp=int(time.time()) - 290)) == BILL


def test_a_callback_decrypts_with_the_configured_apiv3_key(fake_wechatpay, settings):
    settings.WECHATPAY_API_KEY = OTHER_API_V3_KEY
    body = callback_body(OTHER_API_V3_KEY, BILL)

    assert verify_callback(*_forged(body)) == BILL


def test_duplicate_callbacks_deliver_three_identical_copies(fake_wechatpay, callbacks):
    # given
    fake_wechatpay.fail_next("duplicate_callbacks")

    # when
    pay("C6", amount_fen=2500)
    wait_for(lambda: len(callbacks) >= 3)
    time.sleep(0.2)

    # then: all three verify, to the same content; the money moved once
    assert len(callbacks) == 3
    assert len({body for _, body in callbacks}) == 1
    assert {verify_callback(h, b)["out_bill_no"] for h, b in callbacks} == {"C6"}
    assert fake_wechatpay.paid_fen("o_alice") == 2500
    assert fake_wechatpay.callbacks_delivered == 3


def test_without_a_callback_url_nothing_is_sent(fake_wechatpay, callbacks):
    fake_wechatpay.callback_url = None

    pay("C7")
    time.sleep(0.2)

    assert callbacks == []


# --- the client ------------------------------------------------------------------------


def test_the_client_keeps_120_calls_from_4_threads_under_50_a_second(fake_wechatpay, settings):
    # given
    settings.WECHATPAY_MAX_RPS = 50
    answered_at: list[float] = []
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        for i in range(30):
            try:
                pay(f"P{n}x{i}", openid=f"o_rate_{n}", amount_fen=MIN_FEN)
                answered_at.append(time.monotonic())
            except Exception as exc:  # reported below
                errors.append(exc)

    # when
    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    elapsed = time.monotonic() - started

    # then: 119 gaps of 20 ms at least; unpaced, all 120 would answer within well under a second
    assert errors == []
    assert elapsed >= 2.3
    answered_at.sort()
    assert max(sum(1 for t in answered_at if first <= t < first + 1.0) for first in answered_at) <= 60
    assert fake_wechatpay.frequency_limited == 0
    assert fake_wechatpay.transfers_created == 120
    assert fake_wechatpay.total_paid_fen() == 120 * MIN_FEN


def test_the_fake_answers_429_over_its_own_rate_limit(fake_wechatpay, settings):
    # given: no client-side pacing, and a fake that allows 5 a second
    settings.WECHATPAY_MAX_RPS = 0
    fake_wechatpay.rate_limit = 5
    for i in range(5):
        pay(f"L{i}")

    # when
    with pytest.raises(TransferUnknown) as raised:
        pay("L5")

    # then
    assert raised.value.retry_after == 1
    assert fake_wechatpay.frequency_limited == 1
    assert fake_wechatpay.bill("L5") is None


def test_the_keys_and_signatures_stay_out_of_logs(
    fake_wechatpay, callbacks, settings, caplog, other_key_path
):
    # given: everything logged, even httpx's and httpcore's debug lines
    for name in ("", "httpx", "httpcore", "referrals.wechatpay"):
        caplog.set_level(logging.DEBUG, logger=name)
    settings.WECHATPAY_API_KEY = fake_wechatpay.api_key = "sk-very-private-0123456789abcdef"

    # when
    pay("S1", openid="o_private_person")
    wait_for(lambda: len(callbacks) == 1)
    verify_callback(*callbacks[0])
    fake_wechatpay.fail_next("http500")
    with pytest.raises(TransferUnknown):
        pay("S2")
    with pytest.raises(TransferRejected):
        pay("S3", amount_fen=1)
    settings.WECHATPAY_PRIVATE_KEY_PATH = str(other_key_path)
    settings.WECHATPAY_CERT_SERIAL = dev_keys().merchant_cert_serial
    with pytest.raises(TransferRejected):
        query(out_bill_no="S1")

    # then
    for secret in (
        "sk-very-private-0123456789abcdef",
        "PRIVATE KEY",
        "WECHATPAY2-SHA256-RSA2048",
        "signature=",
        callbacks[0][0]["Wechatpay-Signature"],
        "o_private_person",
    ):
        assert secret not in caplog.text
    assert "out_bill_no=S1 state=SUCCESS" in caplog.text
    assert "out_bill_no=S2 unknown: HTTP 500" in caplog.text
    assert "refused code=PARAM_ERROR" in caplog.text
    assert "refused code=SIGN_ERROR" in caplog.text


def test_one_client_is_reused_and_rebuilt_when_the_base_url_changes(fake_wechatpay, settings):
    # given
    pay("B1")
    client = wechatpay._http()
    other = start_in_thread(port=0)
    try:
        # when
        settings.WECHATPAY_API_BASE = other.base_url
        pay("B1")

        # then: a different WeChat Pay, so a second bill there
        assert other.paid_fen("o_alice") == fake_wechatpay.paid_fen("o_alice") == 500
        assert wechatpay._http() is not client
        assert wechatpay._http() is wechatpay._http()
        assert client.is_closed
    finally:
        other.shutdown()


# --- keys ------------------------------------------------------------------------------


def test_processes_starting_at_once_agree_on_one_dev_key_set(tmp_path):
    # given: six processes that each find no key set and make one, at the same moment
    script = (
        "import sys, time; from fakes.wechatpay import dev_keys, load_private_key, public_pem; "
        "time.sleep(max(0, float(sys.argv[2]) - time.time())); k = dev_keys(sys.argv[1]); "
        "m = load_private_key(k.merchant_private_key_path); "
        "p = load_private_key(k.platform_private_key_path); "
        "print(k.merchant_cert_serial, k.platform_public_key_id, "
        "public_pem(m) == k.merchant_public_key_path.read_bytes(), "
        "public_pem(p) == k.platform_public_key_path.read_bytes())"
    )
    start_at = str(time.time() + 3)
    processes = [
        subprocess.Popen(  # noqa: S603 - our own interpreter
            [sys.executable, "-c", script, str(tmp_path / "keys"), start_at],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(6)
    ]

    # when
    outputs = [process.communicate(timeout=60) for process in processes]

    # then: one key set, whole, that every process read back the same
    assert all(process.returncode == 0 for process in processes), [err.decode() for _, err in outputs]
    assert len({out for out, _ in outputs}) == 1
    serial, key_id, merchant_ok, platform_ok = outputs[0][0].decode().split()
    assert len(serial) == 40 and key_id.startswith("PUB_KEY_ID_")
    assert (merchant_ok, platform_ok) == ("True", "True")
    assert sorted(os.listdir(tmp_path / "keys")) == [
        "merchant_private_key.pem",
        "merchant_public_key.pem",
        "platform_private_key.pem",
        "platform_public_key.pem",
    ]


def test_the_dev_keys_are_git_ignored():
    keys = dev_keys()

    result = subprocess.run(  # noqa: S603
        [  # noqa: S607
            "git",
            "check-ignore",
            str(keys.merchant_private_key_path),
            str(keys.platform_private_key_path),
        ],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
    )

    assert result.stdout.split() == [str(keys.merchant_private_key_path), str(keys.platform_private_key_path)]


def _production_check(**env_extra: str) -> subprocess.CompletedProcess:
    keys = dev_keys()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "s" * 60,
        "DATABASE_URL": os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/fission",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "WECHATPAY_MCHID": "1900000109",
        "WECHATPAY_API_KEY": "0123456789abcdef0123456789abcdef",
        "WECHATPAY_PRIVATE_KEY_PATH": str(keys.merchant_private_key_path),
        "WECHATPAY_CERT_SERIAL": keys.merchant_cert_serial,
        "WECHATPAY_PUBLIC_KEY_PATH": str(keys.platform_public_key_path),
        "WECHATPAY_PUBLIC_KEY_ID": keys.platform_public_key_id,
        **env_extra,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_production_starts_with_the_wechatpay_keys():
    result = _production_check()

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"WECHATPAY_PRIVATE_KEY_PATH": ""}, "Set WECHATPAY_PRIVATE_KEY_PATH"),
        ({"WECHATPAY_CERT_SERIAL": ""}, "Set WECHATPAY_CERT_SERIAL"),
        ({"WECHATPAY_PUBLIC_KEY_PATH": ""}, "Set WECHATPAY_PUBLIC_KEY_PATH"),
        ({"WECHATPAY_PUBLIC_KEY_ID": ""}, "Set WECHATPAY_PUBLIC_KEY_ID"),
        ({"WECHATPAY_API_KEY": ""}, "Set WECHATPAY_API_KEY"),
        ({"WECHATPAY_API_KEY": "too-short"}, "32-character APIv3 key"),
        ({"WECHATPAY_PUBLIC_KEY_PATH": "/nonexistent/pub_key.pem"}, "cannot read"),
    ],
)
def test_production_refuses_to_start_without_the_wechatpay_keys(env, complaint):
    result = _production_check(**env)

    assert result.returncode != 0
    assert complaint in result.stderr


# --- the fake on its own ---------------------------------------------------------------


def test_the_fake_does_not_need_django():
    result = subprocess.run(
        [sys.executable, "-c", "import sys, fakes.wechatpay; assert 'django' not in sys.modules"],
        cwd=ROOT,
        capture_output=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 0, result.stderr.decode()


def test_a_separately_running_fake_is_driven_over_http(settings):
    # given: `python -m fakes.wechatpay` in its own process, with its own key
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "fakes.wechatpay", "--port", str(port), "--api-key", "k-script"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    settings.WECHATPAY_API_BASE, settings.WECHATPAY_API_KEY = base, "k-script"
    settings.WECHATPAY_MCHID = DEFAULT_MCHID
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
            control.post("/fake/failures", json={"mode": "wait_user_confirm"}).raise_for_status()
            waiting = pay("H1", amount_fen=600)
            control.post("/fake/confirm/H1").raise_for_status()
            confirmed = query(out_bill_no="H1")
            stats = control.get("/fake/stats").json()
            bad_mode = control.post("/fake/failures", json={"mode": "explode"})
            control.post("/fake/reset").raise_for_status()
            after_reset = control.get("/fake/stats").json()

        # then
        assert waiting.state == "WAIT_USER_CONFIRM"
        assert confirmed.state == "SUCCESS"
        assert stats["paid_fen_by_openid"] == {"o_alice": 600}
        assert stats["total_paid_fen"] == 600
        assert stats["bills"]["H1"]["state"] == "SUCCESS"
        assert bad_mode.status_code == 400
        assert after_reset["bills"] == {}
        assert after_reset["total_paid_fen"] == 0
    finally:
        process.terminate()
        process.wait(timeout=5)
        process.stderr.close()
