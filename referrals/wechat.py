"""WeChat mini-program server API: login (code2Session) and the user's risk rank
(getUserRiskRank, with the access token it needs). The one module that knows WeChat's URLs.

Real HTTP through one keep-alive httpx.Client. Logs the errcode and the elapsed time,
never the code, the secret, the session key or the access token.
"""

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field

import httpx
from django.conf import settings
from django.core.cache import cache

log = logging.getLogger(__name__)

CODE2SESSION_PATH = "/sns/jscode2session"
TOKEN_PATH = "/cgi-bin/token"  # noqa: S105 - a URL path, not a secret
RISK_RANK_PATH = "/wxa/getuserriskrank"
SECRET_QUERY_PATHS = frozenset({CODE2SESSION_PATH, TOKEN_PATH, RISK_RANK_PATH})
SYSTEM_BUSY = -1  # WeChat's "system busy, try again": not the caller's fault
STALE_TOKEN_ERRCODES = frozenset({40001, 40014, 42001})  # invalid / not latest, invalid, expired
TOKEN_REFRESH_MARGIN_SECONDS = 300  # a cached token is replaced this long before it expires
RISK_SCENES = (0, 1, 2)  # 0 register, 1 marketing / activity cheating, 2 UGC
MARKETING_SCENE = 1


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
    """httpx logs every request URL at INFO, and ours carry the secret, the code or the token."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                arg.copy_with(query=None)
                if isinstance(arg, httpx.URL) and arg.path in SECRET_QUERY_PATHS
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


# --- access token and getUserRiskRank --------------------------------------------------

_clock = time.time  # wall clock for token expiry (shared by processes through the cache)


class _Call:
    """One JSON call to WeChat: transport failures, 5xx, garbage and busy are WeChatUnavailable."""

    def __init__(self, name: str):
        self.name = name
        self.started = time.monotonic()

    def elapsed_ms(self) -> int:
        return round((time.monotonic() - self.started) * 1000)

    def unavailable(self, reason: str, retry_after: int = 5) -> WeChatUnavailable:
        log.warning("wechat %s unavailable: %s elapsed_ms=%d", self.name, reason, self.elapsed_ms())
        return WeChatUnavailable(reason, retry_after=retry_after)

    def send(self, method: str, path: str, **kwargs) -> dict:
        """The answer's JSON object, its errcode (0 when absent) an int; errcodes are not raised."""
        timeout = httpx.Timeout(settings.WECHAT_TIMEOUT_SECONDS)
        try:
            response = _http().request(method, path, timeout=timeout, **kwargs)
        except httpx.RequestError as exc:  # unreachable, timeouts, dropped connections, bad encodings
            raise self.unavailable(type(exc).__name__) from exc
        if response.status_code >= 500:
            retry_after = response.headers.get("Retry-After", "")
            raise self.unavailable(
                f"HTTP {response.status_code}", int(retry_after) if retry_after.isdigit() else 5
            )
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise self.unavailable(f"unparseable answer (HTTP {response.status_code})")
        errcode = data.get("errcode") or 0
        if not isinstance(errcode, int) or isinstance(errcode, bool):
            raise self.unavailable(f"unparseable errcode (HTTP {response.status_code})")
        if errcode == SYSTEM_BUSY:
            raise self.unavailable("errcode=-1 (system busy)")
        data["errcode"] = errcode
        return data

    def error(self, data: dict) -> WeChatError:
        errmsg = str(data.get("errmsg", ""))
        log.info(
            "wechat %s errcode=%s errmsg=%r elapsed_ms=%d",
            self.name,
            data["errcode"],
            errmsg,
            self.elapsed_ms(),
        )
        return WeChatError(data["errcode"], errmsg)


def _token_cache_key() -> str:
    """Per app id and API base (a test's fake is not production); never the secret."""
    base = hashlib.sha256(settings.WECHAT_API_BASE.rstrip("/").encode()).hexdigest()[:12]
    return f"wechat:access_token:{settings.WECHAT_APP_ID}:{base}"


def _access_token(*, refresh: bool = False) -> str:
    """The app's access token, from the cache unless `refresh` or it is near its expiry."""
    key = _token_cache_key()
    if not refresh:
        cached = cache.get(key)
        if (
            isinstance(cached, dict)
            and cached.get("token")
            and cached.get("expires_at", 0) - TOKEN_REFRESH_MARGIN_SECONDS > _clock()
        ):
            return cached["token"]

    call = _Call("token")
    params = {
        "grant_type": "client_credential",
        "appid": settings.WECHAT_APP_ID,
        "secret": settings.WECHAT_APP_SECRET,
    }
    data = call.send("GET", TOKEN_PATH, params=params)
    if data["errcode"]:
        raise call.error(data)
    token, expires_in = data.get("access_token"), data.get("expires_in")
    if not isinstance(token, str) or not token or not isinstance(expires_in, int) or expires_in <= 0:
        raise call.unavailable("answer without access_token or expires_in")
    log.info("wechat token errcode=0 expires_in=%d elapsed_ms=%d", expires_in, call.elapsed_ms())
    cache.set(key, {"token": token, "expires_at": _clock() + expires_in}, timeout=expires_in)
    return token


def _forget_token(token: str) -> None:
    """Drop the cached token if it is still the one WeChat refused (not a newer one)."""
    key = _token_cache_key()
    cached = cache.get(key)
    if isinstance(cached, dict) and cached.get("token") == token:
        cache.delete(key)


def risk_rank(*, openid: str, client_ip: str, scene: int = MARKETING_SCENE) -> int:
    """The user's WeChat risk rank (getUserRiskRank): 0 (lowest risk) to 4 (highest).

    `scene` is WeChat's: 1 (marketing / activity cheating, the one for campaigns, by
    default), 0 (registration) or 2 (UGC). `client_ip` is where the user's request came from.

    The access token comes from the Django cache (per app id and API base, the key never
    holds the secret), fetched from /cgi-bin/token when missing or within 5 minutes of its
    expiry. If WeChat says the token is invalid or expired (40001, 40014, 42001) it is fetched
    again and the call retried once; a second refusal raises.

    Raises:
        ValueError: empty `openid` or `client_ip`, or an unknown `scene` (nothing is sent).
        WeChatUnavailable: no usable answer, from the token or the rank call: unreachable,
            timeout, dropped connection, HTTP 5xx, not JSON, errcode -1 (busy), or a rank
            that is not an integer 0-4.
        WeChatError: an errcode (`.errcode`), e.g. 45009 / 45011 rate limits, 40013 /
            40125 bad credentials, 40001 / 42001 when even a fresh token is refused.

    Callers must fail closed: fraud scoring treats any exception from here as "hold" (the
    rank is unknown, so the reward waits), never as rank 0.

    Logs the errcode, the rank and the elapsed time; never the access token or the secret.
    """
    if not openid or not client_ip:
        raise ValueError("risk_rank needs an openid and a client_ip")
    if scene not in RISK_SCENES or isinstance(scene, bool):
        raise ValueError(f"unknown getUserRiskRank scene {scene!r}")
    body = {"appid": settings.WECHAT_APP_ID, "openid": openid, "scene": scene, "client_ip": client_ip}

    token = _access_token()
    call = _Call("getuserriskrank")
    data = call.send("POST", RISK_RANK_PATH, params={"access_token": token}, json=body)
    if data["errcode"] in STALE_TOKEN_ERRCODES:
        log.info("wechat getuserriskrank errcode=%s: refreshing the access token once", data["errcode"])
        _forget_token(token)
        token = _access_token(refresh=True)
        data = call.send("POST", RISK_RANK_PATH, params={"access_token": token}, json=body)
    if data["errcode"]:
        raise call.error(data)
    rank = data.get("risk_rank")
    if not isinstance(rank, int) or isinstance(rank, bool) or not 0 <= rank <= 4:
        raise call.unavailable(f"answer without a risk_rank 0-4 ({rank!r})")
    log.info("wechat getuserriskrank errcode=0 risk_rank=%d elapsed_ms=%d", rank, call.elapsed_ms())
    return rank
