"""WeChat Pay merchant transfers (商家转账): the one module that knows WeChat Pay's URLs.

WeChat Pay API v3 (`/v3/fund-app/mch-transfer/transfer-bills`), "微信支付公钥" mode:

- requests are signed `WECHATPAY2-SHA256-RSA2048` with the merchant's API private key
  (WECHATPAY_PRIVATE_KEY_PATH, its certificate's serial WECHATPAY_CERT_SERIAL);
- answers and callbacks are checked against the WeChat Pay public key
  (WECHATPAY_PUBLIC_KEY_PATH, id WECHATPAY_PUBLIC_KEY_ID in Wechatpay-Serial): signature,
  serial and a timestamp within 5 minutes. An answer that fails the check is TransferUnknown,
  never a success nor a refusal;
- callbacks are `encrypt-resource` bodies, AEAD_AES_256_GCM with the APIv3 key
  (WECHATPAY_API_KEY, 32 bytes).

Without the key paths (dev and tests; production refuses to start so) the dev key set under
var/wechatpay-dev/ is used, the one the local fake (fakes/wechatpay.py) uses.

`out_bill_no` is the idempotency handle. TransferRejected: refused, nothing created.
TransferUnknown: money MAY have moved; `query()` the bill or repeat `transfer()` with the same
number and content, and issue a new number only after a query shows FAIL or CANCELLED, or a
user is paid twice. One keep-alive httpx.Client, at most WECHATPAY_MAX_RPS requests a second
per process. Logs bill numbers, states and timings; never a key, a signature or an openid.
"""

import base64
import binascii
import json
import logging
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import httpx
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

log = logging.getLogger(__name__)

TRANSFER_PATH = "/v3/fund-app/mch-transfer/transfer-bills"
AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"
SCENE_CASH_MARKETING = "1000"  # 现金营销: the transfer scene for campaign rewards
MIN_FEN = 10  # WeChat Pay: at least ¥0.10 a transfer
USER_DAILY_LIMIT_FEN = 2_000_000  # WeChat Pay: at most ¥20,000 per user per day, cannot be raised
WAIT_USER_CONFIRM_EXPIRY = timedelta(hours=24)  # an unconfirmed transfer is cancelled after this
SIGNATURE_MAX_SKEW_SECONDS = 300  # answers and callbacks signed longer ago (or ahead) are refused
CALLBACK_MAX_SKEW_SECONDS = SIGNATURE_MAX_SKEW_SECONDS
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


@dataclass(frozen=True)
class _Keys:
    private_key: rsa.RSAPrivateKey  # the merchant's API key: signs our requests
    cert_serial: str  # the serial of the merchant API certificate of that key
    public_key: rsa.RSAPublicKey  # WeChat Pay's public key: answers and callbacks are signed with it
    public_key_id: str  # PUB_KEY_ID_...: the Wechatpay-Serial WeChat Pay signs with


_loaded: dict[tuple, object] = {}
_loaded_lock = threading.Lock()


def _load(path: str, private: bool):
    """A PEM key from disk, read again only when the file changes."""
    stat = os.stat(path)
    cache_key = (path, private, stat.st_mtime_ns, stat.st_size)
    with _loaded_lock:
        if cache_key not in _loaded:
            with open(path, "rb") as pem:
                data = pem.read()
            key = (
                serialization.load_pem_private_key(data, password=None)
                if private
                else serialization.load_pem_public_key(data)
            )
            if not isinstance(key, rsa.RSAPrivateKey if private else rsa.RSAPublicKey):
                raise ImproperlyConfigured(f"{path} is not an RSA {'private' if private else 'public'} key")
            _loaded[cache_key] = key
        return _loaded[cache_key]


def _keys() -> _Keys:
    """The configured keys; where a key path is unset (dev and tests), the dev key set's."""
    private_path = str(_setting("WECHATPAY_PRIVATE_KEY_PATH", "") or "")
    cert_serial = str(_setting("WECHATPAY_CERT_SERIAL", "") or "")
    public_path = str(_setting("WECHATPAY_PUBLIC_KEY_PATH", "") or "")
    public_key_id = str(_setting("WECHATPAY_PUBLIC_KEY_ID", "") or "")
    if not private_path or not public_path:
        from fakes.wechatpay import dev_keys  # dev only: production refuses to start without the paths

        dev = dev_keys()
        if not private_path:
            private_path, cert_serial = (
                str(dev.merchant_private_key_path),
                cert_serial or dev.merchant_cert_serial,
            )
        if not public_path:
            public_path = str(dev.platform_public_key_path)
            public_key_id = public_key_id or dev.platform_public_key_id
    if not cert_serial or not public_key_id:
        raise ImproperlyConfigured(
            "Set WECHATPAY_CERT_SERIAL and WECHATPAY_PUBLIC_KEY_ID with the key paths."
        )
    return _Keys(_load(private_path, True), cert_serial, _load(public_path, False), public_key_id)


def _api_v3_key() -> bytes:
    key = str(_setting("WECHATPAY_API_KEY", "")).encode()
    if len(key) != 32:
        raise ImproperlyConfigured("WECHATPAY_API_KEY must be the 32-byte APIv3 key")
    return key


def _rsa_sign(private_key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def _signature_problem(headers, body: bytes, keys: _Keys) -> str:
    """Why Wechatpay-* headers do not sign `body` as WeChat Pay, now; "" if they do."""
    timestamp = headers.get("wechatpay-timestamp", "")
    nonce, signature = headers.get("wechatpay-nonce", ""), headers.get("wechatpay-signature", "")
    serial = headers.get("wechatpay-serial", "")
    if not (timestamp.isdigit() and nonce and signature and serial):
        return "missing Wechatpay-Timestamp, -Nonce, -Signature or -Serial"
    if serial != keys.public_key_id:
        return "signed with an unknown key (Wechatpay-Serial)"
    if abs(time.time() - int(timestamp)) > SIGNATURE_MAX_SKEW_SECONDS:
        return "timestamp more than 5 minutes off"
    message = f"{timestamp}\n{nonce}\n".encode() + bytes(body) + b"\n"
    try:
        raw = base64.b64decode(signature, validate=True)
        keys.public_key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, binascii.Error):
        return "bad signature"
    return ""


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


def _authorization(keys: _Keys, method: str, path: str, body: bytes) -> str:
    """`path`: the URL's path with its query string, exactly as sent."""
    mchid = _setting("WECHATPAY_MCHID", "1900000109")
    timestamp, nonce = int(time.time()), secrets.token_hex(16).upper()
    signature = _rsa_sign(
        keys.private_key, f"{method}\n{path}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"
    )
    params = (
        f'mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{keys.cert_serial}"'
    )
    return f"{AUTH_SCHEME} {params}"


def _retry_after(response: httpx.Response, default: int) -> int:
    value = response.headers.get("Retry-After", "")
    return max(1, int(value)) if value.isdigit() else default


def _call(op: str, method: str, path: str, out_bill_no: str, payload: dict | None = None) -> TransferResult:
    if not isinstance(out_bill_no, str) or not OUT_BILL_NO.fullmatch(out_bill_no):  # it goes into URLs
        raise TransferRejected("PARAM_ERROR", "out_bill_no must be 1-32 letters and digits")
    body = b"" if payload is None else json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    started = time.monotonic()
    what = f"wechatpay {op} out_bill_no={out_bill_no}"

    def elapsed_ms() -> int:
        return round((time.monotonic() - started) * 1000)

    def unknown(reason: str, retry_after: int = 5) -> TransferUnknown:
        log.warning("%s unknown: %s elapsed_ms=%d", what, reason, elapsed_ms())
        return TransferUnknown(reason, retry_after=retry_after)

    keys = _keys()
    client = _http()
    timeout = httpx.Timeout(float(_setting("WECHATPAY_TIMEOUT_SECONDS", 5)))
    request = client.build_request(method, path, content=body or None, timeout=timeout)
    request.headers["Authorization"] = _authorization(keys, method, request.url.raw_path.decode(), body)
    request.headers["Wechatpay-Serial"] = keys.public_key_id
    if body:
        request.headers["Content-Type"] = "application/json"
    _pace()  # last, after signing: the spacing is what WeChat Pay sees arrive
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
    # Only an answer signed by WeChat Pay counts, a refusal as much as a success: a forged
    # "refused" could lead to a new bill number while the first one pays.
    problem = _signature_problem(response.headers, response.content, keys)
    if problem:
        code = data.get("code") if isinstance(data, dict) and isinstance(data.get("code"), str) else ""
        raise unknown(f"unverified answer (HTTP {status}{' ' + code if code else ''}): {problem}")
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


def transfer(
    *, out_bill_no: str, openid: str, amount_fen: int, remark: str, activity: str = ""
) -> TransferResult:
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
        # Scene 1000 (cash marketing) must report the activity and the reward.
        "transfer_scene_report_infos": [
            {"info_type": "活动名称", "info_content": (activity or remark)[:32]},
            {"info_type": "奖励说明", "info_content": "邀请好友活动奖励"},
        ],
        "user_recv_perception": "活动奖励",
    }
    notify_url = _setting("WECHATPAY_NOTIFY_URL", "")
    if notify_url:  # where WeChat Pay sends the bill's final state (our /api/v1/wechatpay/callback)
        payload["notify_url"] = notify_url
    return _call("transfer", "POST", TRANSFER_PATH, out_bill_no, payload)


def query(*, out_bill_no: str) -> TransferResult:
    """The bill's current state. TransferRejected("NOT_FOUND") if WeChat Pay never created it.

    NOT_FOUND right after a TransferUnknown is not proof enough for a new bill number (the
    request may still land): retry with the same one, which is always safe.
    """
    return _call("query", "GET", f"{TRANSFER_PATH}/out-bill-no/{out_bill_no}", out_bill_no)


def verify_callback(headers, body: bytes) -> dict:
    """Check a callback's signature, serial and age, decrypt its `resource` and return that
    (at least CALLBACK_FIELDS). Raises CallbackInvalid.

    `headers`: request.headers, request.META or any mapping. Callbacks come more than once and
    can be forged: change state once, and check amount and recipient against our own bill.
    """
    named = {str(k).lower().removeprefix("http_").replace("_", "-"): str(v) for k, v in headers.items()}
    problem = _signature_problem(named, bytes(body), _keys())
    if problem:
        raise CallbackInvalid(problem)
    try:
        envelope = json.loads(body)
    except ValueError as exc:
        raise CallbackInvalid("body is not JSON") from exc
    resource = envelope.get("resource") if isinstance(envelope, dict) else None
    if not isinstance(resource, dict) or envelope.get("resource_type") != "encrypt-resource":
        raise CallbackInvalid("no encrypted resource")
    ciphertext, nonce = resource.get("ciphertext"), resource.get("nonce")
    associated_data = resource.get("associated_data") or ""
    if resource.get("algorithm") != "AEAD_AES_256_GCM" or not isinstance(ciphertext, str):
        raise CallbackInvalid("resource is not AEAD_AES_256_GCM")
    if not isinstance(nonce, str) or not nonce or not isinstance(associated_data, str):
        raise CallbackInvalid("resource lacks its nonce")
    aead = AESGCM(_api_v3_key())  # a wrong-length key is our mistake, not the callback's: not caught
    try:
        sealed = base64.b64decode(ciphertext, validate=True)
        plaintext = aead.decrypt(nonce.encode(), sealed, associated_data.encode() or None)
        data = json.loads(plaintext)
    except (binascii.Error, InvalidTag, ValueError) as exc:
        raise CallbackInvalid("resource does not decrypt with the APIv3 key") from exc
    if not isinstance(data, dict) or any(field not in data for field in CALLBACK_FIELDS):
        raise CallbackInvalid("resource lacks the transfer fields")
    amount = data["transfer_amount"]
    if data["state"] not in STATES or not isinstance(amount, int) or isinstance(amount, bool):
        raise CallbackInvalid("unknown state or amount")
    if "mch_id" in data and str(data["mch_id"]) != str(_setting("WECHATPAY_MCHID", "1900000109")):
        raise CallbackInvalid("a callback for another merchant")
    return data
