"""A local fake of WeChat's mini-program server API (login, access token, user risk rank), failures included.

Standard library only, no Django. Run it on its own:

    python -m fakes.wechat --port 9101 [--app-id X] [--secret Y] [--demo-codes] [--verbose]

or start it in a thread from tests with `start_in_thread()`.

`GET /sns/jscode2session?appid=&secret=&js_code=&grant_type=authorization_code` behaves
like the real one: HTTP 200, Content-Type text/plain, a JSON body that is either
{"openid", "session_key", "unionid"?} or {"errcode", "errmsg"}. Codes are issued by the
fake (like wx.login() on a phone), live 5 minutes and can be used once. More than 100
exchanges for one openid within 60 s answer 45011.

With --demo-codes, any code `demo-<name>` is accepted every time, as openid
`o_demo_<name>` and unionid `u_demo_<name>`:

    curl 'http://127.0.0.1:9101/sns/jscode2session?appid=wxfission0demo0001&secret=fake-wechat-secret-for-local-use&js_code=demo-alice&grant_type=authorization_code'

`GET /cgi-bin/token?grant_type=client_credential&appid=&secret=` answers
{"access_token", "expires_in": 7200} (or an errcode: 40013, 40125, 40002...). A token is
valid for `token_expires_in` seconds of the fake's clock (then 42001); a newer token leaves
older ones 5 more minutes, as WeChat does; `expire_tokens()` makes them all invalid (40001).

`POST /wxa/getuserriskrank?access_token=` with JSON {appid, openid, scene, client_ip,
mobile_no?, email_address?, extended_info?, is_test?} checks the token (41001 missing,
40001 unknown or revoked, 42001 expired) and answers {"errcode": 0, "errmsg", "risk_rank",
"unoin_id"} (sic, WeChat's spelling). The rank is 0 unless set with `set_risk_rank(openid,
rank)`; every request body is kept in `risk_requests`.

Control endpoints, to drive a separately running fake from scripts:

    POST /fake/codes       {"openid"?, "unionid"?, "blocked"?}   -> {"code", "openid", "unionid"}
    POST /fake/failures    {"mode", "times"?, "errcode"?, "seconds"?, "endpoint"?}
    POST /fake/risk_ranks  {"openid", "rank"}
    POST /fake/reset
    GET  /healthz          -> {"ok": true}

Failure modes (consumed in order, one per request to their endpoint: "code2session" by
default, "token" or "riskrank"): "errcode" (answer that errcode), "timeout" (wait
`seconds`, then answer normally), "http500", "garbage" (HTTP 200, not JSON) and "drop"
(close the connection without an answer).
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import secrets
import string
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from fakes._http import FakeHandler, FakeServer

DEFAULT_APP_ID = "wxfission0demo0001"
DEFAULT_SECRET = "fake-wechat-secret-for-local-use"  # noqa: S105 - a fake's well-known default

CODE_MAX_AGE_SECONDS = 300
RATE_LIMIT = 100
RATE_WINDOW_SECONDS = 60
FAILURE_MODES = ("errcode", "timeout", "http500", "garbage", "drop")
ENDPOINTS = ("code2session", "token", "riskrank")
TOKEN_EXPIRES_IN = 7200
OLD_TOKEN_GRACE_SECONDS = 300  # a new token leaves the previous ones this long
DEMO_CODE = re.compile(r"demo-([A-Za-z0-9_-]{1,40})")
URL_SAFE = string.ascii_letters + string.digits + "-_"

ERRMSGS = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40013: "invalid appid",
    40029: "invalid code",
    40125: "invalid appsecret",
    40163: "code been used",
    40226: "high risk user",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41008: "missing code",
    42001: "access_token expired",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit mustslower retry next minute",
    47001: "data format error",
}


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_openid() -> str:
    return "o" + _random(URL_SAFE, 27)


@dataclass
class _Code:
    openid: str
    unionid: str
    blocked: bool
    issued_at: float
    used: bool = False


@dataclass
class _Failure:
    mode: str
    errcode: int | None = None
    seconds: float | None = None


class FakeWeChat:
    """The fake's state and behaviour; `start_in_thread()` or `serve_forever()` puts it on HTTP."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        app_id: str = DEFAULT_APP_ID,
        secret: str = DEFAULT_SECRET,
        demo_codes: bool = False,
        verbose: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.app_id = app_id
        self.secret = secret
        self.demo_codes = demo_codes
        self.verbose = verbose
        self.clock = clock
        self.code_max_age = CODE_MAX_AGE_SECONDS
        self.rate_limit = RATE_LIMIT
        self.rate_window = RATE_WINDOW_SECONDS
        self.token_expires_in = TOKEN_EXPIRES_IN
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.reset()
        self.server = _Server((host, port), _Handler, self)

    # --- helpers for tests and scripts ---------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def exchanges(self) -> int:
        """How many code2session requests the fake has received (failures included)."""
        return self._exchanges

    @property
    def issued_tokens(self) -> list[str]:
        """Every access token issued since the last reset, revoked ones included."""
        with self._lock:
            return [*self._tokens, *self._revoked]

    @property
    def token_requests(self) -> int:
        """How many /cgi-bin/token requests the fake has received (failures included)."""
        return self._requests["token"]

    @property
    def risk_rank_requests(self) -> int:
        """How many getuserriskrank requests the fake has received (failures included)."""
        return self._requests["riskrank"]

    def now(self) -> float:
        return self.clock() + self._clock_offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward: codes expire, rate-limit windows pass."""
        with self._lock:
            self._clock_offset += seconds

    def issue_code(self, openid: str | None = None, unionid: str | None = None, blocked: bool = False) -> str:
        """What wx.login() gives a phone: a fresh one-time code for that user (a new user by default)."""
        code = _random(string.ascii_letters + string.digits, 32)
        with self._lock:
            now = self.now()
            stale = []  # codes are kept in the order issued: forget the long dead ones first
            for old, entry in self._codes.items():
                if now - entry.issued_at <= 2 * self.code_max_age:
                    break
                stale.append(old)
            for old in stale:
                del self._codes[old]
            self._codes[code] = _Code(openid or new_openid(), unionid or "", bool(blocked), now)
        return code

    def fail_next(
        self,
        mode: str,
        *,
        times: int = 1,
        errcode: int | None = None,
        seconds: float | None = None,
        endpoint: str = "code2session",
    ) -> None:
        """Make the next `times` requests to `endpoint` fail this way (queued after earlier ones).

        `endpoint` is "code2session", "token" (/cgi-bin/token) or "riskrank" (getuserriskrank);
        each has its own queue. "errcode" needs `errcode`; "timeout" waits `seconds` (10 by
        default) before answering.
        """
        if mode not in FAILURE_MODES:
            raise ValueError(f"unknown failure mode {mode!r}; one of {', '.join(FAILURE_MODES)}")
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {', '.join(ENDPOINTS)}")
        if mode == "errcode" and errcode is None:
            raise ValueError('mode "errcode" needs an errcode')
        with self._lock:
            self._failures[endpoint].extend(_Failure(mode, errcode, seconds) for _ in range(times))

    def set_risk_rank(self, openid: str, rank: int) -> None:
        """What getuserriskrank answers for this openid from now on (0 unless set)."""
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank <= 4:
            raise ValueError(f"a risk rank is an integer 0-4, not {rank!r}")
        with self._lock:
            self._risk_ranks[openid] = rank

    def issue_token(self) -> str:
        """A fresh access token, as /cgi-bin/token gives; older ones keep 5 more minutes."""
        token = _random(URL_SAFE, 136)
        with self._lock:
            now = self.now()
            for old, expires_at in list(self._tokens.items()):
                if expires_at < now - self.token_expires_in:  # long dead: forget it
                    del self._tokens[old]
                else:
                    self._tokens[old] = min(expires_at, now + OLD_TOKEN_GRACE_SECONDS)
            self._tokens[token] = now + self.token_expires_in
        return token

    def expire_tokens(self) -> None:
        """Revoke every token issued so far: using one answers 40001 (as after a secret reset)."""
        with self._lock:
            self._revoked.update(self._tokens)
            self._tokens.clear()

    def reset(self) -> None:
        """Forget codes, tokens, risk ranks, queued failures, counters and clock travel."""
        with self._lock:
            self._codes: dict[str, _Code] = {}
            self._failures: dict[str, deque[_Failure]] = {endpoint: deque() for endpoint in ENDPOINTS}
            self._recent: dict[str, deque[float]] = {}
            self._exchanges = 0
            self._requests = dict.fromkeys(ENDPOINTS, 0)
            self._tokens: dict[str, float] = {}  # token -> when it expires, on the fake's clock
            self._revoked: set[str] = set()
            self._risk_ranks: dict[str, int] = {}
            self.risk_requests: list[dict] = []
            self._clock_offset = 0.0

    # --- lifecycle -----------------------------------------------------------------------

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.1)

    def start(self) -> FakeWeChat:
        self._thread = threading.Thread(target=self.serve_forever, name="fake-wechat", daemon=True)
        self._thread.start()
        return self

    def shutdown(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=5)
        self.server.close_all()
        self.server.server_close()

    # --- behaviour -----------------------------------------------------------------------

    def take_failure(self, endpoint: str = "code2session") -> _Failure | None:
        with self._lock:
            if endpoint == "code2session":
                self._exchanges += 1
            self._requests[endpoint] += 1
            queue = self._failures[endpoint]
            return queue.popleft() if queue else None

    def sleep(self, seconds: float) -> bool:
        """Wait, unless the fake shuts down first; True if it is still running."""
        return not self._stopping.wait(seconds)

    def code2session(self, query: dict[str, str]) -> dict:
        appid, secret, code = query.get("appid", ""), query.get("secret", ""), query.get("js_code", "")
        if not appid:
            return _error(41002)
        if appid != self.app_id:
            return _error(40013)
        if not secret:
            return _error(41004)
        if secret != self.secret:
            return _error(40125)
        if query.get("grant_type") != "authorization_code":
            return _error(40002)
        if not code:
            return _error(41008)
        with self._lock:
            now = self.now()
            demo = DEMO_CODE.fullmatch(code) if self.demo_codes else None
            if demo:
                entry = _Code(f"o_demo_{demo.group(1)}", f"u_demo_{demo.group(1)}", False, now)
            else:
                entry = self._codes.get(code)
                if entry is None or now - entry.issued_at > self.code_max_age:
                    return _error(40029)
                if entry.used:
                    return _error(40163)
            recent = self._recent.setdefault(entry.openid, deque())
            while recent and now - recent[0] >= self.rate_window:
                recent.popleft()
            if len(recent) >= self.rate_limit:
                return _error(45011)
            recent.append(now)
            entry.used = True
        if entry.blocked:
            return _error(40226)
        answer = {"openid": entry.openid, "session_key": base64.b64encode(secrets.token_bytes(16)).decode()}
        if entry.unionid:
            answer["unionid"] = entry.unionid
        return answer

    def token(self, query: dict[str, str]) -> dict:
        appid, secret = query.get("appid", ""), query.get("secret", "")
        if not appid:
            return _error(41002)
        if appid != self.app_id:
            return _error(40013)
        if not secret:
            return _error(41004)
        if secret != self.secret:
            return _error(40125)
        if query.get("grant_type") != "client_credential":
            return _error(40002)
        return {"access_token": self.issue_token(), "expires_in": self.token_expires_in}

    def risk_rank(self, query: dict[str, str], body: dict | None) -> dict:
        token = query.get("access_token", "")
        if not token:
            return _error(41001)
        with self._lock:
            expires_at = self._tokens.get(token)
            if expires_at is None:
                return _error(40001)
            if self.now() >= expires_at:
                return _error(42001)
        if body is None:
            return _error(47001)
        self.risk_requests.append(body)
        if body.get("appid") != self.app_id:
            return _error(40013)
        openid = body.get("openid")
        if not isinstance(openid, str) or not openid:
            return _error(40003)
        scene, client_ip = body.get("scene"), body.get("client_ip")
        if (
            scene not in (0, 1, 2)
            or isinstance(scene, bool)
            or not isinstance(client_ip, str)
            or not client_ip
        ):
            return _error(47001)
        with self._lock:
            rank = self._risk_ranks.get(openid, 0)
        return {
            "errcode": 0,
            "errmsg": "getuserriskrank succ",
            "risk_rank": rank,
            "unoin_id": secrets.randbelow(2**31),
        }


def _error(errcode: int) -> dict:
    return {"errcode": errcode, "errmsg": f"{ERRMSGS.get(errcode, 'error')}, rid: {secrets.token_hex(12)}"}


class _Server(FakeServer):
    pass


class _Handler(FakeHandler):
    server_version = "fake-wechat"
    server: _Server

    def send_body(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, data: dict, *, status: int = 200, content_type: str = "application/json") -> None:
        self.send_body(status, json.dumps(data).encode(), content_type)

    def read_json(self) -> dict | None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def answer(self, endpoint: str, respond: Callable[[], dict], content_type: str) -> None:
        """Answer `respond()`, unless a failure is queued for `endpoint`."""
        fake = self.server.fake
        failure = fake.take_failure(endpoint)
        if failure is not None:
            if failure.mode == "errcode":
                return self.send_json(_error(failure.errcode), content_type=content_type)
            if failure.mode == "http500":
                return self.send_body(
                    500, b"<html><body>500 Internal Server Error</body></html>", "text/html"
                )
            if failure.mode == "garbage":
                return self.send_body(200, b"<html><body>upstream says hello\x00</body></html>", "text/plain")
            if failure.mode == "drop":
                self.close_connection = True
                return None
            if failure.mode == "timeout" and not fake.sleep(failure.seconds or 10):
                self.close_connection = True
                return None
        try:
            self.send_json(respond(), content_type=content_type)
        except (BrokenPipeError, ConnectionResetError):  # the caller gave up waiting
            self.close_connection = True
        return None

    def do_GET(self):
        url = urlsplit(self.path)
        fake = self.server.fake
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/healthz":
            return self.send_json({"ok": True})
        if url.path == "/sns/jscode2session":
            return self.answer("code2session", lambda: fake.code2session(query), "text/plain")
        if url.path == "/cgi-bin/token":
            return self.answer("token", lambda: fake.token(query), "application/json; encoding=utf-8")
        return self.send_json({"errcode": 404, "errmsg": "not found"}, status=404)

    def do_POST(self):
        fake = self.server.fake
        url = urlsplit(self.path)
        path = url.path
        data = self.read_json()
        if path == "/wxa/getuserriskrank":
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            return self.answer(
                "riskrank", lambda: fake.risk_rank(query, data), "application/json; charset=UTF-8"
            )
        if data is None:
            return self.send_json({"error": "body must be a JSON object"}, status=400)
        if path == "/fake/codes":
            openid, unionid = str(data.get("openid") or new_openid()), str(data.get("unionid") or "")
            code = fake.issue_code(openid, unionid, bool(data.get("blocked", False)))
            return self.send_json({"code": code, "openid": openid, "unionid": unionid})
        if path == "/fake/failures":
            try:
                fake.fail_next(
                    str(data.get("mode")),
                    times=int(data.get("times", 1)),
                    errcode=None if data.get("errcode") is None else int(data["errcode"]),
                    seconds=None if data.get("seconds") is None else float(data["seconds"]),
                    endpoint=str(data.get("endpoint") or "code2session"),
                )
            except (TypeError, ValueError) as exc:
                return self.send_json({"error": str(exc)}, status=400)
            return self.send_json({"ok": True})
        if path == "/fake/risk_ranks":
            try:
                fake.set_risk_rank(str(data.get("openid") or ""), data.get("rank"))
            except ValueError as exc:
                return self.send_json({"error": str(exc)}, status=400)
            return self.send_json({"ok": True})
        if path == "/fake/reset":
            fake.reset()
            return self.send_json({"ok": True})
        return self.send_json({"error": "not found"}, status=404)


def start_in_thread(
    *,
    port: int = 0,
    app_id: str = DEFAULT_APP_ID,
    secret: str = DEFAULT_SECRET,
    demo_codes: bool = False,
    host: str = "127.0.0.1",
    verbose: bool = False,
) -> FakeWeChat:
    """A running fake on a background thread (port 0: any free port; see `.base_url`)."""
    return FakeWeChat(
        host=host, port=port, app_id=app_id, secret=secret, demo_codes=demo_codes, verbose=verbose
    ).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fakes.wechat", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9101)
    parser.add_argument("--app-id", default=DEFAULT_APP_ID)
    parser.add_argument("--secret", default=DEFAULT_SECRET)
    parser.add_argument("--demo-codes", action="store_true", help="accept demo-<name> codes, every time")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    fake = FakeWeChat(
        host=args.host,
        port=args.port,
        app_id=args.app_id,
        secret=args.secret,
        demo_codes=args.demo_codes,
        verbose=args.verbose,
    )
    print(f"fake WeChat listening on {fake.base_url} (app id {fake.app_id})", file=sys.stderr, flush=True)
    try:
        fake.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        fake.server.server_close()


if __name__ == "__main__":
    main()
