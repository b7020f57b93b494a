"""A local fake of WeChat's mini-program login API (code2Session), failures included.

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

Control endpoints, to drive a separately running fake from scripts:

    POST /fake/codes     {"openid"?, "unionid"?, "blocked"?}   -> {"code", "openid", "unionid"}
    POST /fake/failures  {"mode", "times"?, "errcode"?, "seconds"?}
    POST /fake/reset
    GET  /healthz        -> {"ok": true}

Failure modes (consumed in order, one per code2session request): "errcode" (answer that
errcode), "timeout" (wait `seconds`, then answer normally), "http500", "garbage"
(HTTP 200, not JSON) and "drop" (close the connection without an answer).
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
DEMO_CODE = re.compile(r"demo-([A-Za-z0-9_-]{1,40})")
URL_SAFE = string.ascii_letters + string.digits + "-_"

ERRMSGS = {
    -1: "system error",
    40002: "invalid grant_type",
    40013: "invalid appid",
    40029: "invalid code",
    40125: "invalid appsecret",
    40163: "code been used",
    40226: "high risk user",
    41002: "appid missing",
    41004: "appsecret missing",
    41008: "missing code",
    45011: "api minute-quota reach limit mustslower retry next minute",
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
        self, mode: str, *, times: int = 1, errcode: int | None = None, seconds: float | None = None
    ) -> None:
        """Make the next `times` code2session requests fail this way (queued after earlier ones).

        "errcode" needs `errcode`; "timeout" waits `seconds` (10 by default) before answering.
        """
        if mode not in FAILURE_MODES:
            raise ValueError(f"unknown failure mode {mode!r}; one of {', '.join(FAILURE_MODES)}")
        if mode == "errcode" and errcode is None:
            raise ValueError('mode "errcode" needs an errcode')
        with self._lock:
            self._failures.extend(_Failure(mode, errcode, seconds) for _ in range(times))

    def reset(self) -> None:
        """Forget codes, queued failures, rate-limit counters, the exchange count and clock travel."""
        with self._lock:
            self._codes: dict[str, _Code] = {}
            self._failures: deque[_Failure] = deque()
            self._recent: dict[str, deque[float]] = {}
            self._exchanges = 0
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

    def take_failure(self) -> _Failure | None:
        with self._lock:
            self._exchanges += 1
            return self._failures.popleft() if self._failures else None

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

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/healthz":
            return self.send_json({"ok": True})
        if url.path != "/sns/jscode2session":
            return self.send_json({"errcode": 404, "errmsg": "not found"}, status=404)
        fake = self.server.fake
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        failure = fake.take_failure()
        if failure is not None:
            if failure.mode == "errcode":
                return self.send_json(_error(failure.errcode), content_type="text/plain")
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
            self.send_json(fake.code2session(query), content_type="text/plain")
        except (BrokenPipeError, ConnectionResetError):  # the caller gave up waiting
            self.close_connection = True
        return None

    def do_POST(self):
        fake = self.server.fake
        path = urlsplit(self.path).path
        data = self.read_json()
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
                )
            except (TypeError, ValueError) as exc:
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
