"""A local fake of WeChat Pay's merchant transfer API (商家转账), stateful, failures included.

No Django (the `cryptography` package for the keys). Run it on its own:

    python -m fakes.wechatpay --port 9102 [--mchid X] [--api-key APIV3KEY] [--callback-url URL]
        [--merchant-public-key PEM --merchant-cert-serial S] [--platform-private-key PEM
        --platform-public-key-id PUB_KEY_ID_...] [--verbose]

or start it in a thread from tests with `start_in_thread()`.

It speaks WeChat Pay API v3 as referrals/wechatpay.py does, in the "微信支付公钥" mode:

    POST /v3/fund-app/mch-transfer/transfer-bills                      create (or replay) a bill
    GET  /v3/fund-app/mch-transfer/transfer-bills/out-bill-no/{no}     the bill

Requests carry `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="",nonce_str="",signature="",
timestamp="",serial_no=""`: base64 RSA-SHA256 (PKCS#1 v1.5) of "METHOD\\nPATH?QUERY\\n
TIMESTAMP\\nNONCE\\nBODY\\n" with the merchant's private key, `serial_no` its certificate's
serial; a wrong one is 401 SIGN_ERROR. Every answer carries Wechatpay-Timestamp, -Nonce,
-Signature (RSA-SHA256 of "TIMESTAMP\\nNONCE\\nBODY\\n" with the platform private key) and
-Serial (the platform public key's id). Keys default to the dev set that `dev_keys()` makes
once under var/wechatpay-dev/ (git-ignored), which the client also uses when its key paths
are unset; never real keys.

Bills are keyed by out_bill_no: the same number with the same content
answers the existing bill (no second payment), with other content 400 PARAM_ERROR. Errors
look like WeChat Pay's: {"code", "message"} with 400 PARAM_ERROR (amount < 10 fen, bad
out_bill_no...), 403 QUOTA_EXCEED (¥20,000 per openid per day), 403 NOT_ENOUGH (merchant
daily cap, ¥100,000 by default), 404 NOT_FOUND, 429 FREQUENCY_LIMITED (over 100 requests
in a second, with Retry-After). By default a transfer is SUCCESS at once and money moves.

With a callback URL, every change to a final state or to WAIT_USER_CONFIRM is POSTed there
from a background thread (best effort) as WeChat Pay does: an `encrypt-resource` body of
event MCHTRANSFER.BILL.FINISHED whose `resource` is the bill, AEAD_AES_256_GCM-encrypted
with the APIv3 key (`api_key`, 32 bytes), signed with the Wechatpay-* headers above.

Failure modes, queued and consumed in order: "rate_limited" (429), "http500" and "garbage"
(HTTP 200, not JSON), all three creating nothing, are taken by the next API request of any
kind; the others by the next transfer request that creates a bill: "fail" (state FAIL,
ACCOUNT_FROZEN, no money), "timeout_after_paying" (paid SUCCESS, then the answer waits
`seconds`, 10 by default: the caller times out yet money moved), "wait_user_confirm"
(WAIT_USER_CONFIRM until confirmed, expired, or 24 h of the fake's clock pass) and
"duplicate_callbacks" (a normal success whose callbacks are sent 3 times).

Control endpoints, to drive a separately running fake from scripts:

    POST /fake/failures  {"mode", "times"?, "seconds"?}
    POST /fake/confirm/{out_bill_no}     WAIT_USER_CONFIRM -> SUCCESS
    POST /fake/expire/{out_bill_no}      WAIT_USER_CONFIRM -> CANCELLED
    POST /fake/advance   {"seconds"}     move the fake's clock
    POST /fake/reset
    GET  /fake/stats     -> {"paid_fen_by_openid", "total_paid_fen", "bills", ...}
    GET  /healthz        -> {"ok": true}
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import queue
import re
import secrets
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from fakes._http import FakeHandler, FakeServer

DEFAULT_MCHID = "1900000109"
DEFAULT_API_KEY = "fake-wechatpay-key-for-local-use"  # 32 bytes, as an APIv3 key is
DEFAULT_PORT = 9102

TRANSFER_PATH = "/v3/fund-app/mch-transfer/transfer-bills"
QUERY_PREFIX = TRANSFER_PATH + "/out-bill-no/"
AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"
MIN_FEN = 10
USER_DAILY_LIMIT_FEN = 2_000_000  # ¥20,000 per openid per day
MERCHANT_DAILY_LIMIT_FEN = 10_000_000  # ¥100,000 per merchant per day (the default)
WAIT_USER_CONFIRM_SECONDS = 24 * 3600
RATE_LIMIT = 100  # requests per second
SIGNATURE_MAX_SKEW_SECONDS = 300
CALLBACK_COPIES_DUPLICATED = 3
REMARK_MAX_CHARS = 32
ANY_REQUEST_MODES = ("rate_limited", "http500", "garbage")
BILL_MODES = ("fail", "timeout_after_paying", "wait_user_confirm", "duplicate_callbacks")
FAILURE_MODES = ANY_REQUEST_MODES + BILL_MODES
OUT_BILL_NO = re.compile(r"[A-Za-z0-9]{1,32}")
AUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')
NOT_PAID = ("FAIL", "CANCELLED")

from fakes.wechatpay_keys import (  # noqa: E402 - the key and crypto helpers, re-exported for tests
    CHINA,
    _iso,
    callback_body,
    callback_headers,
    dev_keys,
    load_private_key,
    load_public_key,
    new_private_key_pem,
    public_pem,
    request_message,
    rsa_verify,
    signature_headers,
    signed_callback,
)

__all__ = [  # what tests and the client's dev settings import from here
    "DEFAULT_API_KEY",
    "DEFAULT_MCHID",
    "FakeWeChatPay",
    "callback_body",
    "callback_headers",
    "dev_keys",
    "load_private_key",
    "load_public_key",
    "new_private_key_pem",
    "public_pem",
    "signature_headers",
    "signed_callback",
    "start_in_thread",
]


@dataclass
class _Bill:
    out_bill_no: str
    transfer_bill_no: str
    appid: str
    openid: str
    amount_fen: int
    remark: str
    scene_id: str
    state: str
    created_at: float
    updated_at: float
    fail_reason: str = ""
    package_info: str = ""
    callback_copies: int = 1
    notify_url: str = ""  # the request's notify_url: where callbacks go

    @property
    def day(self) -> str:
        return datetime.fromtimestamp(self.created_at, CHINA).date().isoformat()

    def view(self, mchid: str) -> dict:
        data = {
            "mch_id": mchid,
            "out_bill_no": self.out_bill_no,
            "transfer_bill_no": self.transfer_bill_no,
            "appid": self.appid,
            "state": self.state,
            "transfer_amount": self.amount_fen,
            "transfer_remark": self.remark,
            "openid": self.openid,
            "create_time": _iso(self.created_at),
            "update_time": _iso(self.updated_at),
        }
        if self.fail_reason:
            data["fail_reason"] = self.fail_reason
        if self.state == "WAIT_USER_CONFIRM":
            data["package_info"] = self.package_info
        return data

    def callback(self, mchid: str) -> dict:
        """The decrypted `resource` of a MCHTRANSFER.BILL.FINISHED callback."""
        data = {
            "out_bill_no": self.out_bill_no,
            "transfer_bill_no": self.transfer_bill_no,
            "state": self.state,
            "mch_id": mchid,
            "transfer_amount": self.amount_fen,
            "openid": self.openid,
            "create_time": _iso(self.created_at),
            "update_time": _iso(self.updated_at),
        }
        if self.fail_reason:
            data["fail_reason"] = self.fail_reason
        return data


@dataclass
class _Failure:
    mode: str
    seconds: float | None = None


@dataclass
class Answer:
    status: int
    data: dict | bytes
    headers: dict | None = None
    delay: float = 0.0


def _error(status: int, code: str, message: str, headers: dict | None = None) -> Answer:
    return Answer(status, {"code": code, "message": message}, headers)


class FakeWeChatPay:
    """The fake's state and behaviour; `start_in_thread()` or `serve_forever()` puts it on HTTP."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        mchid: str = DEFAULT_MCHID,
        api_key: str = DEFAULT_API_KEY,
        appid: str | None = None,
        callback_url: str | None = None,
        merchant_daily_limit_fen: int = MERCHANT_DAILY_LIMIT_FEN,
        verbose: bool = False,
        clock: Callable[[], float] = time.time,
        merchant_public_key_path: str | os.PathLike | None = None,
        merchant_cert_serial: str | None = None,
        platform_private_key_path: str | os.PathLike | None = None,
        platform_public_key_id: str | None = None,
    ):
        self.mchid = mchid
        self.api_key = api_key  # the APIv3 key: callbacks are encrypted with it
        keys = None
        if None in (
            merchant_public_key_path,
            merchant_cert_serial,
            platform_private_key_path,
            platform_public_key_id,
        ):
            keys = dev_keys()
        # The merchant's API certificate: requests must be signed with its private key.
        self.merchant_public_key = load_public_key(merchant_public_key_path or keys.merchant_public_key_path)
        self.merchant_cert_serial = merchant_cert_serial or keys.merchant_cert_serial
        # WeChat Pay's own key (微信支付公钥): every answer and callback is signed with it.
        self.platform_private_key = load_private_key(
            platform_private_key_path or keys.platform_private_key_path
        )
        self.platform_public_key_id = platform_public_key_id or keys.platform_public_key_id
        self.signature_time_offset = 0.0  # seconds added to Wechatpay-Timestamp: tests age answers with it
        self.appid = appid  # None: any appid is bound to this merchant
        self.callback_url = callback_url
        self.merchant_daily_limit_fen = merchant_daily_limit_fen
        self.user_daily_limit_fen = USER_DAILY_LIMIT_FEN
        self.rate_limit = RATE_LIMIT
        self.verbose = verbose
        self.clock = clock
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._callbacks: queue.Queue = queue.Queue()
        self._callback_thread = threading.Thread(target=self._deliver, name="fake-wechatpay-cb", daemon=True)
        self._callback_thread.start()
        self.reset()
        self.server = _Server((host, port), _Handler, self)

    # --- helpers for tests and scripts ---------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def transfers_created(self) -> int:
        """Distinct bills that moved money (SUCCESS)."""
        with self._lock:
            return sum(1 for bill in self._bills.values() if bill.state == "SUCCESS")

    @property
    def requests(self) -> int:
        """API requests received (control endpoints not counted)."""
        return self._requests

    @property
    def frequency_limited(self) -> int:
        """429 FREQUENCY_LIMITED answers given, injected ones included."""
        return self._frequency_limited

    @property
    def callbacks_delivered(self) -> int:
        return self._callbacks_delivered

    def now(self) -> float:
        return self.clock() + self._clock_offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock: days (and their quotas) pass, unconfirmed bills expire."""
        with self._lock:
            self._clock_offset += seconds
            self._expire_due()

    def paid_fen(self, openid: str) -> int:
        with self._lock:
            return sum(
                b.amount_fen for b in self._bills.values() if b.openid == openid and b.state == "SUCCESS"
            )

    def total_paid_fen(self) -> int:
        with self._lock:
            return sum(b.amount_fen for b in self._bills.values() if b.state == "SUCCESS")

    def bill(self, out_bill_no: str) -> dict | None:
        with self._lock:
            self._expire_due()
            bill = self._bills.get(out_bill_no)
            return None if bill is None else bill.view(self.mchid)

    def stats(self) -> dict:
        with self._lock:
            self._expire_due()
            paid: dict[str, int] = {}
            for bill in self._bills.values():
                if bill.state == "SUCCESS":
                    paid[bill.openid] = paid.get(bill.openid, 0) + bill.amount_fen
            return {
                "paid_fen_by_openid": paid,
                "total_paid_fen": sum(paid.values()),
                "transfers_created": sum(1 for b in self._bills.values() if b.state == "SUCCESS"),
                "bills": {no: bill.view(self.mchid) for no, bill in self._bills.items()},
                "requests": self._requests,
                "frequency_limited": self._frequency_limited,
                "callbacks_delivered": self._callbacks_delivered,
            }

    def fail_next(self, mode: str, *, times: int = 1, seconds: float | None = None) -> None:
        """Queue `times` failures of this mode after earlier ones (see the module docstring)."""
        if mode not in FAILURE_MODES:
            raise ValueError(f"unknown failure mode {mode!r}; one of {', '.join(FAILURE_MODES)}")
        with self._lock:
            self._failures.extend(_Failure(mode, seconds) for _ in range(times))

    def confirm(self, out_bill_no: str) -> dict:
        """The user accepts the transfer in WeChat: WAIT_USER_CONFIRM -> SUCCESS, money moves."""
        return self._settle(out_bill_no, "SUCCESS")

    def expire(self, out_bill_no: str) -> dict:
        """The transfer is not accepted in time: WAIT_USER_CONFIRM -> CANCELLED, nothing moves."""
        return self._settle(out_bill_no, "CANCELLED")

    def reset(self) -> None:
        """Forget bills, queued failures, counters and clock travel (the callback URL stays)."""
        with self._lock:
            self._bills: dict[str, _Bill] = {}
            self._failures: deque[_Failure] = deque()
            self._recent: deque[float] = deque()
            self._requests = 0
            self._frequency_limited = 0
            self._callbacks_delivered = 0
            self._clock_offset = 0.0

    # --- lifecycle -----------------------------------------------------------------------

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.1)

    def start(self) -> FakeWeChatPay:
        self._thread = threading.Thread(target=self.serve_forever, name="fake-wechatpay", daemon=True)
        self._thread.start()
        return self

    def shutdown(self) -> None:
        self._stopping.set()
        self._callbacks.put(None)
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=5)
        self.server.close_all()
        self.server.server_close()
        self._callback_thread.join(timeout=5)

    def sleep(self, seconds: float) -> bool:
        """Wait, unless the fake shuts down first; True if it is still running."""
        return not self._stopping.wait(seconds)

    # --- behaviour -----------------------------------------------------------------------

    def api(self, method: str, path: str, authorization: str, body: bytes) -> Answer:
        """One API request (`path` as sent): injected failures, signature, rate limit, then the work."""
        with self._lock:
            self._requests += 1
            if self._failures and self._failures[0].mode in ANY_REQUEST_MODES:
                mode = self._failures.popleft().mode
                if mode == "rate_limited":
                    self._frequency_limited += 1
                    return _error(429, "FREQUENCY_LIMITED", "频率超限", {"Retry-After": "1"})
                if mode == "http500":
                    return _error(500, "SYSTEM_ERROR", "系统异常，请稍后重试")
                return Answer(200, b"<html><body>upstream says hello\x00</body></html>")
        if not self._signed(method, path, authorization, body):
            return _error(401, "SIGN_ERROR", "签名错误")
        with self._lock:
            moment = time.monotonic()
            while self._recent and moment - self._recent[0] >= 1.0:
                self._recent.popleft()
            if len(self._recent) >= self.rate_limit:
                self._frequency_limited += 1
                return _error(429, "FREQUENCY_LIMITED", "频率超限", {"Retry-After": "1"})
            self._recent.append(moment)
        route = urlsplit(path).path
        if method == "POST" and route == TRANSFER_PATH:
            return self._transfer(body)
        if method == "GET" and route.startswith(QUERY_PREFIX):
            return self._query(route.removeprefix(QUERY_PREFIX))
        return _error(404, "NOT_FOUND", "no such API")

    def _signed(self, method: str, path: str, authorization: str, body: bytes) -> bool:
        """The merchant's signature: RSA-SHA256 with the key of the certificate `serial_no` names."""
        scheme, _, rest = authorization.partition(" ")
        params = dict(AUTH_PARAM.findall(rest))
        timestamp, nonce, signature = (
            params.get("timestamp", ""),
            params.get("nonce_str", ""),
            params.get("signature", ""),
        )
        if scheme != AUTH_SCHEME or params.get("mchid") != self.mchid or not timestamp.isdigit() or not nonce:
            return False
        if params.get("serial_no") != self.merchant_cert_serial:
            return False
        if abs(time.time() - int(timestamp)) > SIGNATURE_MAX_SKEW_SECONDS:
            return False
        message = request_message(method, path, timestamp, nonce, body)
        return rsa_verify(self.merchant_public_key, message, signature)

    def signature_headers(self, body: bytes) -> dict:
        """Wechatpay-* headers that sign `body` as this fake's WeChat Pay platform key."""
        return signature_headers(
            body,
            private_key=self.platform_private_key,
            serial=self.platform_public_key_id,
            timestamp=int(time.time() + self.signature_time_offset),
        )

    def _transfer(self, body: bytes) -> Answer:
        try:
            data = json.loads(body or b"null")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return _error(400, "PARAM_ERROR", "body must be a JSON object")
        out_bill_no, openid, amount = data.get("out_bill_no"), data.get("openid"), data.get("transfer_amount")
        remark, appid, scene = data.get("transfer_remark"), data.get("appid"), data.get("transfer_scene_id")
        if not isinstance(out_bill_no, str) or not OUT_BILL_NO.fullmatch(out_bill_no):
            return _error(400, "PARAM_ERROR", "out_bill_no must be 1-32 letters and digits")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < MIN_FEN:
            return _error(400, "PARAM_ERROR", f"transfer_amount must be at least {MIN_FEN} fen")
        if not isinstance(openid, str) or not openid:
            return _error(400, "PARAM_ERROR", "openid is required")
        if not isinstance(remark, str) or not remark or len(remark) > REMARK_MAX_CHARS:
            return _error(400, "PARAM_ERROR", f"transfer_remark must be 1-{REMARK_MAX_CHARS} characters")
        if not isinstance(appid, str) or not appid or (self.appid is not None and appid != self.appid):
            return _error(400, "PARAM_ERROR", "appid is not bound to this mchid")
        if scene != "1000":
            return _error(400, "PARAM_ERROR", "transfer_scene_id is not enabled for this merchant")
        reported = data.get("transfer_scene_report_infos")
        kinds = (
            {i.get("info_type") for i in reported if isinstance(i, dict)}
            if isinstance(reported, list)
            else set()
        )
        if not {"活动名称", "奖励说明"} <= kinds:
            return _error(400, "PARAM_ERROR", "transfer_scene_report_infos must report 活动名称 and 奖励说明")
        notify_url = data.get("notify_url") or ""
        if not isinstance(notify_url, str) or (
            notify_url and not notify_url.startswith(("https://", "http://"))
        ):
            return _error(400, "PARAM_ERROR", "notify_url must be a URL")
        delay = 0.0
        with self._lock:
            self._expire_due()
            bill = self._bills.get(out_bill_no)
            if bill is not None:
                if (bill.appid, bill.openid, bill.amount_fen, bill.remark) != (appid, openid, amount, remark):
                    return _error(400, "PARAM_ERROR", "out_bill_no reused with different content")
                return Answer(200, bill.view(self.mchid))
            now = self.now()
            day = datetime.fromtimestamp(now, CHINA).date().isoformat()
            today = [b for b in self._bills.values() if b.day == day and b.state not in NOT_PAID]
            if sum(b.amount_fen for b in today if b.openid == openid) + amount > self.user_daily_limit_fen:
                return _error(403, "QUOTA_EXCEED", "超过用户单日收款额度")
            if sum(b.amount_fen for b in today) + amount > self.merchant_daily_limit_fen:
                return _error(403, "NOT_ENOUGH", "商户当日转账额度不足")
            failure = None
            if self._failures and self._failures[0].mode in BILL_MODES:
                failure = self._failures.popleft()
            bill = _Bill(
                out_bill_no=out_bill_no,
                transfer_bill_no="1330000" + "".join(secrets.choice("0123456789") for _ in range(25)),
                appid=appid,
                openid=openid,
                amount_fen=amount,
                remark=remark,
                scene_id=scene,
                notify_url=notify_url,
                state="SUCCESS",
                created_at=now,
                updated_at=now,
            )
            if failure is not None and failure.mode == "fail":
                bill.state, bill.fail_reason = "FAIL", "ACCOUNT_FROZEN"
            elif failure is not None and failure.mode == "wait_user_confirm":
                bill.state = "WAIT_USER_CONFIRM"
                bill.package_info = base64.b64encode(secrets.token_bytes(24)).decode()
            elif failure is not None and failure.mode == "timeout_after_paying":
                delay = 10.0 if failure.seconds is None else failure.seconds
            elif failure is not None and failure.mode == "duplicate_callbacks":
                bill.callback_copies = CALLBACK_COPIES_DUPLICATED
            self._bills[out_bill_no] = bill
            self._callbacks.put(self._notification(bill))
            return Answer(200, bill.view(self.mchid), delay=delay)

    def _query(self, out_bill_no: str) -> Answer:
        with self._lock:
            self._expire_due()
            bill = self._bills.get(out_bill_no)
            if bill is None:
                return _error(404, "NOT_FOUND", "记录不存在")
            return Answer(200, bill.view(self.mchid))

    def _settle(self, out_bill_no: str, state: str) -> dict:
        with self._lock:
            self._expire_due()
            bill = self._bills.get(out_bill_no)
            if bill is None or bill.state != "WAIT_USER_CONFIRM":
                raise ValueError(f"{out_bill_no!r} is not waiting for the user's confirmation")
            self._change(bill, state)
            return bill.view(self.mchid)

    def _change(self, bill: _Bill, state: str) -> None:
        """Under the lock: a state change and its callback."""
        bill.state, bill.updated_at = state, self.now()
        self._callbacks.put(self._notification(bill))

    def _expire_due(self) -> None:
        """Under the lock: WAIT_USER_CONFIRM bills older than 24 h of the fake's clock are CANCELLED."""
        now = self.now()
        for bill in self._bills.values():
            if bill.state == "WAIT_USER_CONFIRM" and now - bill.created_at >= WAIT_USER_CONFIRM_SECONDS:
                self._change(bill, "CANCELLED")

    def _notification(self, bill: _Bill) -> tuple[str, dict, int] | None:
        url = bill.notify_url or self.callback_url  # the request's notify_url, as WeChat Pay does
        if not url:
            return None
        return url, bill.callback(self.mchid), bill.callback_copies

    def _deliver(self) -> None:
        """The callback thread: posts in order, best effort, identical copies for duplicates."""
        while True:
            item = self._callbacks.get()
            if self._stopping.is_set():
                return
            if item is None:
                continue
            url, data, copies = item
            try:  # encrypted and signed here, off the request path: a bad APIv3 key fails only callbacks
                body = callback_body(self.api_key, data)
            except ValueError as exc:
                print(f"fake WeChat Pay: callback not sent: {exc}", file=sys.stderr)
                continue
            headers = {"Content-Type": "application/json", **self.signature_headers(body)}
            for _ in range(copies):
                request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
                try:
                    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - our callback URL
                        response.read()
                    with self._lock:
                        self._callbacks_delivered += 1
                except (OSError, ValueError) as exc:
                    if self.verbose:
                        print(f"fake WeChat Pay: callback to {url} failed: {exc}", file=sys.stderr)


class _Server(FakeServer):
    pass


class _Handler(FakeHandler):
    server_version = "fake-wechatpay"
    server: _Server

    def send_answer(self, answer: Answer) -> None:
        is_json = isinstance(answer.data, dict)
        body = json.dumps(answer.data, ensure_ascii=False).encode() if is_json else answer.data
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json" if is_json else "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Request-ID", secrets.token_hex(16))
            for name, value in self.server.fake.signature_headers(body).items():  # every answer is signed
                self.send_header(name, value)
            for name, value in (answer.headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the caller gave up waiting
            self.close_connection = True

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def handle_api(self, method: str, body: bytes) -> None:
        fake = self.server.fake
        answer = fake.api(method, self.path, self.headers.get("Authorization", ""), body)
        if answer.delay and not fake.sleep(answer.delay):
            self.close_connection = True
            return
        self.send_answer(answer)

    def do_GET(self):
        path = urlsplit(self.path).path
        if path == "/healthz":
            return self.send_answer(Answer(200, {"ok": True}))
        if path == "/fake/stats":
            return self.send_answer(Answer(200, self.server.fake.stats()))
        return self.handle_api("GET", b"")

    def do_POST(self):
        fake = self.server.fake
        path = urlsplit(self.path).path
        body = self.read_body()
        if not path.startswith("/fake/"):
            return self.handle_api("POST", body)
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return self.send_answer(Answer(400, {"error": "body must be a JSON object"}))
        try:
            if path == "/fake/failures":
                seconds = None if data.get("seconds") is None else float(data["seconds"])
                fake.fail_next(str(data.get("mode")), times=int(data.get("times", 1)), seconds=seconds)
            elif path == "/fake/advance":
                fake.advance(float(data["seconds"]))
            elif path == "/fake/reset":
                fake.reset()
            elif path.startswith("/fake/confirm/"):
                return self.send_answer(Answer(200, fake.confirm(path.removeprefix("/fake/confirm/"))))
            elif path.startswith("/fake/expire/"):
                return self.send_answer(Answer(200, fake.expire(path.removeprefix("/fake/expire/"))))
            else:
                return self.send_answer(Answer(404, {"error": "not found"}))
        except (KeyError, TypeError, ValueError) as exc:
            return self.send_answer(Answer(400, {"error": str(exc)}))
        return self.send_answer(Answer(200, {"ok": True}))


def start_in_thread(
    *,
    port: int = 0,
    api_key: str = DEFAULT_API_KEY,
    mchid: str = DEFAULT_MCHID,
    callback_url: str | None = None,
    host: str = "127.0.0.1",
    verbose: bool = False,
    **keys,
) -> FakeWeChatPay:
    """A running fake on a background thread (port 0: any free port; see `.base_url`).

    `api_key` is the APIv3 key (callbacks are encrypted with it); `keys` are FakeWeChatPay's
    key options (merchant_public_key_path, merchant_cert_serial, platform_private_key_path,
    platform_public_key_id), each defaulting to the dev key set (`dev_keys()`).
    """
    return FakeWeChatPay(
        host=host, port=port, api_key=api_key, mchid=mchid, callback_url=callback_url, verbose=verbose, **keys
    ).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fakes.wechatpay", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--mchid", default=DEFAULT_MCHID)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the APIv3 key (32 bytes) callbacks use")
    parser.add_argument("--merchant-public-key", default=None, help="PEM (default: the dev key set)")
    parser.add_argument("--merchant-cert-serial", default=None, help="(default: the dev key set's)")
    parser.add_argument("--platform-private-key", default=None, help="PEM (default: the dev key set)")
    parser.add_argument("--platform-public-key-id", default=None, help="(default: the dev key set's)")
    parser.add_argument("--appid", default=None, help="the one appid bound to the merchant (default: any)")
    parser.add_argument("--callback-url", default=None, help="where transfer callbacks are POSTed")
    parser.add_argument("--merchant-daily-limit-fen", type=int, default=MERCHANT_DAILY_LIMIT_FEN)
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    fake = FakeWeChatPay(
        host=args.host,
        port=args.port,
        mchid=args.mchid,
        api_key=args.api_key,
        appid=args.appid,
        callback_url=args.callback_url,
        merchant_daily_limit_fen=args.merchant_daily_limit_fen,
        verbose=args.verbose,
        merchant_public_key_path=args.merchant_public_key,
        merchant_cert_serial=args.merchant_cert_serial,
        platform_private_key_path=args.platform_private_key,
        platform_public_key_id=args.platform_public_key_id,
    )
    print(f"fake WeChat Pay listening on {fake.base_url} (mchid {fake.mchid})", file=sys.stderr, flush=True)
    try:
        fake.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        fake.server.server_close()


if __name__ == "__main__":
    main()
