"""WeChat mini-program login (code2Session): the one module that knows WeChat's URLs.

Real HTTP through one keep-alive httpx.Client. Logs the errcode and the elapsed time,
never the code, the secret or the session key.
"""

import logging
import threading
import time
from dataclasses import dataclass, field

import httpx
from django.conf import settings

log = logging.getLogger(__name__)

CODE2SESSION_PATH = "/sns/jscode2session"
SYSTEM_BUSY = -1  # WeChat's "system busy, try again": not the caller's fault


@dataclass(frozen=True)
class WeChatSession:
    openid: str
    session_key: str = field(repr=False)
    unionid: str = ""


class WeChatError(Exception):
    """WeChat answered with an errcode (bad, used or expired code, rate limit, blocked user...)."""

    def __init__(self, errcode: int, errmsg: str = ""):
        super().__init__(f"WeChat errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class WeChatUnavailable(Exception):
    """WeChat did not give a usable answer: unreachable, timeout, 5xx, garbage or busy (-1)."""

    def __init__(self, reason: str, *, retry_after: int = 5):
        super().__init__(reason)
        self.retry_after = retry_after


class _RedactQuery(logging.Filter):
    """httpx logs every request URL at INFO, and ours carries the secret and the code."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                arg.copy_with(query=None)
                if isinstance(arg, httpx.URL) and arg.path == CODE2SESSION_PATH
                else arg
                for arg in record.args
            )
        return True


logging.getLogger("httpx").addFilter(_RedactQuery())

_lock = threading.Lock()
_client: httpx.Client | None = None


def _http() -> httpx.Client:
    """The shared client; rebuilt when WECHAT_API_BASE changes."""
    global _client
    base = settings.WECHAT_API_BASE.rstrip("/")
    with _lock:
        if _client is None or str(_client.base_url).rstrip("/") != base:
            if _client is not None:
                _client.close()
            _client = httpx.Client(base_url=base, headers={"Accept": "application/json"})
        return _client


def code2session(code: str) -> WeChatSession:
    """Exchange a wx.login() code for the user's openid, session key and (maybe) unionid."""
    params = {
        "appid": settings.WECHAT_APP_ID,
        "secret": settings.WECHAT_APP_SECRET,
        "js_code": code,
        "grant_type": "authorization_code",
    }
    started = time.monotonic()

    def elapsed_ms() -> int:
        return round((time.monotonic() - started) * 1000)

    def unavailable(reason: str, retry_after: int = 5) -> WeChatUnavailable:
        log.warning("wechat code2session unavailable: %s elapsed_ms=%d", reason, elapsed_ms())
        return WeChatUnavailable(reason, retry_after=retry_after)

    try:
        response = _http().get(
            CODE2SESSION_PATH, params=params, timeout=httpx.Timeout(settings.WECHAT_TIMEOUT_SECONDS)
        )
    except httpx.RequestError as exc:  # unreachable, timeouts, dropped connections, bad encodings
        raise unavailable(type(exc).__name__) from exc

    if response.status_code >= 500:
        retry_after = response.headers.get("Retry-After", "")
        raise unavailable(f"HTTP {response.status_code}", int(retry_after) if retry_after.isdigit() else 5)
    try:
        data = response.json()  # WeChat often says text/plain; the body is JSON all the same
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise unavailable(f"unparseable answer (HTTP {response.status_code})")

    errcode = data.get("errcode") or 0
    if not isinstance(errcode, int):
        raise unavailable(f"unparseable errcode (HTTP {response.status_code})")
    if errcode == SYSTEM_BUSY:
        raise unavailable("errcode=-1 (system busy)")
    if errcode:
        errmsg = str(data.get("errmsg", ""))
        log.info("wechat code2session errcode=%s errmsg=%r elapsed_ms=%d", errcode, errmsg, elapsed_ms())
        raise WeChatError(errcode, errmsg)
    if not data.get("openid") or not data.get("session_key"):
        raise unavailable(f"answer without openid or session_key (HTTP {response.status_code})")

    log.info("wechat code2session errcode=0 elapsed_ms=%d", elapsed_ms())
    return WeChatSession(
        openid=str(data["openid"]),
        session_key=str(data["session_key"]),
        unionid=str(data.get("unionid") or ""),
    )
