"""WeChat Pay merchant transfers (商家转账): the one module that knows WeChat Pay's URLs.

Shaped like the v3 API (`/v3/fund-app/mch-transfer/transfer-bills`), simplified: requests and
callbacks are signed with HMAC-SHA256 over a shared WECHATPAY_API_KEY instead of RSA keys and
platform certificates, and callbacks are plain JSON, not AES-GCM encrypted. The local fake
(fakes/wechatpay.py) speaks this dialect; the real API needs RSA in `_authorization` and
`verify_callback`.

`out_bill_no` is the idempotency handle. TransferRejected: refused, nothing created.
TransferUnknown: money MAY have moved; `query()` the bill or repeat `transfer()` with the same
number and content, and issue a new number only after a query shows FAIL or CANCELLED, or a
user is paid twice. One keep-alive httpx.Client, at most WECHATPAY_MAX_RPS requests a second
per process. Logs bill numbers, states and timings; never the key, a signature or an openid.
"""

import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import httpx
from django.conf import settings

log = logging.getLogger(__name__)

TRANSFER_PATH = "/v3/fund-app/mch-transfer/transfer-bills"
SCENE_CASH_MARKETING = "1000"  # 现金营销: the transfer scene for campaign rewards
MIN_FEN = 10  # WeChat Pay: at least ¥0.10 a transfer
USER_DAILY_LIMIT_FEN = 2_000_000  # WeChat Pay: at most ¥20,000 per user per day, cannot be raised
WAIT_USER_CONFIRM_EXPIRY = timedelta(hours=24)  # an unconfirmed transfer is cancelled after this
CALLBACK_MAX_SKEW_SECONDS = 300
STATES = ("ACCEPTED", "PROCESSING", "WAIT_USER_CONFIRM", "TRANSFERING", "SUCCESS", "FAIL", "CANCELLED")
FINAL_STATES = frozenset({"SUCCESS", "FAIL", "CANCELLED"})
CALLBACK_FIELDS = ("out_bill_no", "transfer_bill_no", "state", "transfer_amount", "openid", "update_time")
OUT_BILL_NO = re.compile(r"[A-Za-z0-9]{1,32}")


@dataclass(frozen=True)
class TransferResult:
    out_bill_no: str
    transfer_bill_no: str
    state: str
    amount_fen: int
    openid: str
    fail_reason: str = ""
    create_time: str = ""
    update_time: str = ""
    package_info: str = ""  # WAIT_USER_CONFIRM: what the mini program passes to wx.requestMerchantTransfer

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


class TransferRejected(Exception):
    """A definite refusal; no transfer was created (PARAM_ERROR, NOT_ENOUGH, QUOTA_EXCEED, NOT_FOUND...)."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(f"WeChat Pay {code}: {message}")
        self.code = code
        self.message = message


class TransferUnknown(Exception):
    """Timeout, connection error, 5xx, 429, garbage: money MAY have moved. Query before a new bill number."""

    def __init__(self, reason: str, *, retry_after: int = 5):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class CallbackInvalid(Exception):
    """A callback that is unsigned, wrongly signed, stale or malformed: answer 4xx and change nothing."""


def _setting(name: str, default):
    return getattr(settings, name, default)


def _hmac(message: bytes) -> str:
    key = str(_setting("WECHATPAY_API_KEY", "fake-wechatpay-key-for-local-use")).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


_pace_lock = threading.Lock()
_pace_next = 0.0


def _pace() -> None:
    """Space requests 1/WECHATPAY_MAX_RPS apart across this process's threads, no bursts (limit: 100/s)."""
    global _pace_next
    rps = float(_setting("WECHATPAY_MAX_RPS", 50))
    with _pace_lock:
        now = time.monotonic()
        slot = max(now, _pace_next)
        _pace_next = slot + (1.0 / rps if rps > 0 else 0.0)
    time.sleep(max(0.0, slot - now))


_lock = threading.Lock()
_client: httpx.Client | None = None


def _http() -> httpx.Client:
    """The shared client; rebuilt when WECHATPAY_API_BASE changes."""
    global _client
    base = str(_setting("WECHATPAY_API_BASE", "http://127.0.0.1:9102")).rstrip("/")
    with _lock:
        if _client is None or str(_client.base_url).rstrip("/") != base:
            if _client is not None:
                _client.close()
            _client = httpx.Client(base_url=base, headers={"Accept": "application/json"})
        return _client


def _authorization(method: str, path: str, body: bytes) -> str:
    mchid = _setting("WECHATPAY_MCHID", "1900000109")
    timestamp, nonce = int(time.time()), secrets.token_hex(16)
    signature = _hmac(f"{method}\n{path}\n{timestamp}\n{nonce}\n".encode() + body + b"\n")
    params = f'mchid="{mchid}",timestamp="{timestamp}",nonce_str="{nonce}",signature="{signature}"'
    return f"FISSION-HMAC-SHA256 {params}"


def _retry_after(response: httpx.Response, default: int) -> int:
    value = response.headers.get("Retry-After", "")
    return max(1, int(value)) if value.isdigit() else default


def _call(op: str, method: str, path: str, out_bill_no: str, payload: dict | None = None) -> TransferResult:
    if not isinstance(out_bill_no, str) or not OUT_BILL_NO.fullmatch(out_bill_no):  # it goes into URLs
        raise TransferRejected("PARAM_ERROR", "out_bill_no must be 1-32 letters and digits")
    body = b"" if payload is None else json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    _pace()
    started = time.monotonic()
    what = f"wechatpay {op} out_bill_no={out_bill_no}"

    def elapsed_ms() -> int:
        return round((time.monotonic() - started) * 1000)

    def unknown(reason: str, retry_after: int = 5) -> TransferUnknown:
        log.warning("%s unknown: %s elapsed_ms=%d", what, reason, elapsed_ms())
        return TransferUnknown(reason, retry_after=retry_after)

    client = _http()
    timeout = httpx.Timeout(float(_setting("WECHATPAY_TIMEOUT_SECONDS", 5)))
    request = client.build_request(method, path, content=body or None, timeout=timeout)
    request.headers["Authorization"] = _authorization(method, request.url.raw_path.decode(), body)
    if body:
        request.headers["Content-Type"] = "application/json"
    try:
        response = client.send(request)
    except httpx.RequestError as exc:  # unreachable, timeout, dropped: the request may have landed
        raise unknown(type(exc).__name__) from exc

    status = response.status_code
    if status == 429:
        raise unknown("HTTP 429 FREQUENCY_LIMITED", _retry_after(response, 1))
    if status >= 500:
        raise unknown(f"HTTP {status}", _retry_after(response, 5))
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise unknown(f"unparseable answer (HTTP {status})")
    if status >= 400:
        if not isinstance(data.get("code"), str) or not data["code"]:
            raise unknown(f"HTTP {status} without an error code")
        log.info("%s refused code=%s elapsed_ms=%d", what, data["code"], elapsed_ms())
        raise TransferRejected(data["code"], str(data.get("message", "")))

    sent = payload or {}
    amount = data.get("transfer_amount", sent.get("transfer_amount"))
    state = data.get("state")
    if data.get("out_bill_no") != out_bill_no or state not in STATES or not data.get("transfer_bill_no"):
        raise unknown(f"answer without a usable bill (HTTP {status})")
    if not isinstance(amount, int):
        raise unknown(f"answer without an amount (HTTP {status})")
    log.info("%s state=%s elapsed_ms=%d", what, state, elapsed_ms())
    texts = {k: str(data.get(k) or "") for k in ("fail_reason", "create_time", "update_time", "package_info")}
    openid = str(data.get("openid") or sent.get("openid") or "")
    return TransferResult(out_bill_no, str(data["transfer_bill_no"]), state, amount, openid, **texts)


def transfer(*, out_bill_no: str, openid: str, amount_fen: int, remark: str) -> TransferResult:
    """Pay `amount_fen` to `openid`. Idempotent per `out_bill_no` (same content: the same bill back).

    The answer may be final (SUCCESS, FAIL) or not (ACCEPTED, PROCESSING, TRANSFERING, or
    WAIT_USER_CONFIRM, which is CANCELLED unless the user confirms within 24 h): follow with
    `query()` or the callback. On TransferUnknown, query before ever issuing a new bill number.
    """
    payload = {
        "appid": _setting("WECHATPAY_APPID", None) or settings.WECHAT_APP_ID,
        "out_bill_no": out_bill_no,
        "openid": openid,
        "transfer_amount": amount_fen,
        "transfer_remark": remark,
        "transfer_scene_id": SCENE_CASH_MARKETING,
    }
    return _call("transfer", "POST", TRANSFER_PATH, out_bill_no, payload)


def query(*, out_bill_no: str) -> TransferResult:
    """The bill's current state. TransferRejected("NOT_FOUND") if WeChat Pay never created it.

    NOT_FOUND right after a TransferUnknown is not proof enough for a new bill number (the
    request may still land): retry with the same one, which is always safe.
    """
    return _call("query", "GET", f"{TRANSFER_PATH}/out-bill-no/{out_bill_no}", out_bill_no)


def verify_callback(headers, body: bytes) -> dict:
    """Check a callback's signature and age; return its JSON (CALLBACK_FIELDS). Raises CallbackInvalid.

    `headers`: request.headers, request.META or any mapping. Callbacks come more than once and
    can be forged: change state once, and check amount and recipient against our own bill.
    """
    named = {str(k).lower().removeprefix("http_").replace("_", "-"): str(v) for k, v in headers.items()}
    timestamp = named.get("wechatpay-timestamp", "")
    nonce, signature = named.get("wechatpay-nonce", ""), named.get("wechatpay-signature", "")
    if not (timestamp.isdigit() and nonce and signature):
        raise CallbackInvalid("missing Wechatpay-Timestamp, -Nonce or -Signature")
    if abs(time.time() - int(timestamp)) > CALLBACK_MAX_SKEW_SECONDS:
        raise CallbackInvalid("timestamp more than 5 minutes off")
    expected = _hmac(f"{timestamp}\n{nonce}\n".encode() + bytes(body) + b"\n")
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        raise CallbackInvalid("bad signature")
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise CallbackInvalid("body is not JSON") from exc
    if not isinstance(data, dict) or any(field not in data for field in CALLBACK_FIELDS):
        raise CallbackInvalid("body lacks the transfer fields")
    if data["state"] not in STATES or not isinstance(data["transfer_amount"], int):
        raise CallbackInvalid("unknown state or amount")
    return data
