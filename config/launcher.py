"""`make run`: the whole platform in one terminal, on the embedded defaults.

Starts PostgreSQL (unless DATABASE_URL is set), migrates, loads the demo data (with a
simulated campaign), makes the admin user, then runs the web server (gunicorn), a Celery
worker, Celery beat and the simulator's live trickle.
Ctrl-C (or SIGTERM) stops them in order and then the embedded PostgreSQL.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port(preferred: int) -> int:
    """`preferred` if nothing listens there, else any free port."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise OSError("no free port")


def say(message: str) -> None:
    print(f"[fission] {message}", flush=True)


class Platform:
    def __init__(self, port: int, host: str):
        self.port = port
        self.host = host
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.stopping = False

    def start(self, name: str, argv: list[str]) -> None:
        # Each child gets its own session, so a Ctrl-C reaches only us and we stop the
        # children in the order they started: web, beat (no new scheduled work), then
        # the worker, which finishes the task in hand (warm shutdown).
        proc = subprocess.Popen(argv, cwd=ROOT, start_new_session=True)  # noqa: S603
        self.children.append((name, proc))
        say(f"started {name} (pid {proc.pid})")

    def stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        say("stopping…")
        for name, proc in self.children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    say(f"{name} did not stop in 20 s; killing it")
                    proc.kill()
                    proc.wait()
            say(f"{name} stopped")

    def wait_healthy(self, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        url = f"http://{self.host}:{self.port}/healthz"
        while time.monotonic() < deadline:
            for name, proc in self.children:
                if proc.poll() is not None:
                    say(f"{name} exited with code {proc.returncode} while starting")
                    return False
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.5)
        return False

    def watch(self) -> int:
        while not self.stopping:
            for name, proc in self.children:
                if proc.poll() is not None and not self.stopping:
                    say(f"{name} exited unexpectedly with code {proc.returncode}")
                    self.stop()
                    return 1
            time.sleep(0.5)
        return 0


# The demo's living campaign (docs/simulator.md): the cold-start campaign's first days are
# simulated at startup (COPY, a few seconds, only while it has no participants), then the same
# plan carries on through the real services while the platform runs. FISSION_SIMULATE=0: off.
DEMO_SIMULATION = [
    "simulate_campaign",
    "--campaign-slug=cold-start",
    "--participants=2000",
    "--days=3",
    "--seed=1",
    "--channels=moments:0.4,wechat_group:0.3,chat:0.1,kol:0.1,poster:0.1",
    "--fraud-rings=2",
]


def manage(*args: str, capture: bool = False) -> str:
    result = subprocess.run(  # noqa: S603
        [str(BIN / "python"), "manage.py", *args], cwd=ROOT, check=True, text=True, capture_output=capture
    )
    return (result.stdout or "").strip()


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
    port = int(os.environ.get("PORT", "8000"))
    host = os.environ.get("HOST", "127.0.0.1")
    os.chdir(ROOT)

    from config.env import database_url, stop_embedded_database

    if not os.environ.get("DATABASE_URL"):
        say("DATABASE_URL is not set: starting the embedded PostgreSQL in var/pgdata")
    database_url()  # starts the embedded server if needed and exports DATABASE_URL to children
    if not os.environ.get("CELERY_BROKER_URL"):
        say("CELERY_BROKER_URL is not set: Celery uses the filesystem broker in var/broker")

    platform = Platform(port, host)
    fake_wechat = ""
    if not os.environ.get("WECHAT_API_BASE"):
        wechat_port = os.environ.get("FISSION_FAKE_WECHAT_PORT") or str(free_port(preferred=9101))
        fake_wechat = f"http://127.0.0.1:{wechat_port}"
        os.environ["WECHAT_API_BASE"] = fake_wechat
        say(f"WECHAT_API_BASE is not set: starting the fake WeChat server on {fake_wechat} (demo codes on)")
    fake_pay = ""
    if not os.environ.get("WECHATPAY_API_BASE"):
        pay_port = os.environ.get("FISSION_FAKE_WECHATPAY_PORT") or str(free_port(preferred=9102))
        fake_pay = f"http://127.0.0.1:{pay_port}"
        os.environ["WECHATPAY_API_BASE"] = fake_pay
        say(f"WECHATPAY_API_BASE is not set: starting the fake WeChat Pay on {fake_pay}")
        # The fake signs as WeChat Pay with the dev key set (var/wechatpay-dev/), so every
        # process uses that set, not keys meant for the real WeChat Pay.
        keys = ("PRIVATE_KEY_PATH", "CERT_SERIAL", "PUBLIC_KEY_PATH", "PUBLIC_KEY_ID")
        if [name for name in keys if os.environ.pop(f"WECHATPAY_{name}", None)]:  # pops all four
            say("the fake WeChat Pay signs with the dev keys: WECHATPAY_ key paths and ids ignored")

    def on_signal(signum, frame):
        platform.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    simulate = os.environ.get("FISSION_SIMULATE", "1") != "0"
    say("migrating, collecting static files, loading demo data…")
    try:
        manage("migrate", "--noinput", "-v", "0")
        manage("collectstatic", "--noinput", "-v", "0")
        manage("seed_demo")
        manage("seed_demo_rewards")
        manage("seed_demo_groupbuy")
        manage("seed_demo_pricecut")
        if simulate:
            manage(*DEMO_SIMULATION, "--bulk", "--if-empty")
        admin_login = manage("ensure_admin", capture=True)
    except subprocess.CalledProcessError as exc:
        say(f"setting up failed: `manage.py {' '.join(exc.cmd[2:])}` exited with code {exc.returncode}")
        return 1

    workers = os.environ.get("WEB_CONCURRENCY", "2")
    platform.start(
        "web",
        [
            str(BIN / "gunicorn"),
            "config.wsgi",
            "--bind",
            f"{host}:{port}",
            "--workers",
            workers,
            "--access-logfile",
            "-",
            "--graceful-timeout",
            "10",
        ],
    )
    beat_schedule = os.environ.get("CELERY_BEAT_SCHEDULE_FILENAME", str(ROOT / "var" / "celerybeat-schedule"))
    platform.start("beat", [str(BIN / "celery"), "-A", "config", "beat", "-l", "info", "-s", beat_schedule])
    if fake_pay:
        callback = f"http://{host}:{port}/api/v1/wechatpay/callback"
        pay_port = fake_pay.rsplit(":", 1)[1]
        fake_pay_args = ["--port", pay_port, "--callback-url", callback]
        for name, option in (("WECHATPAY_MCHID", "--mchid"), ("WECHATPAY_API_KEY", "--api-key")):
            if os.environ.get(name):  # the fake must know the merchant and encrypt with its APIv3 key
                fake_pay_args += [option, os.environ[name]]
        platform.start("fake-wechatpay", [str(BIN / "python"), "-m", "fakes.wechatpay", *fake_pay_args])
    if fake_wechat:
        platform.start(
            "fake-wechat",
            [
                str(BIN / "python"),
                "-m",
                "fakes.wechat",
                "--port",
                fake_wechat.rsplit(":", 1)[1],
                "--demo-codes",
            ],
        )
    platform.start("worker", [str(BIN / "celery"), "-A", "config", "worker", "-l", "info", "-c", "2"])
    if simulate:
        platform.start("simulator", [str(BIN / "python"), "manage.py", *DEMO_SIMULATION, "--live=5"])

    if not platform.wait_healthy():
        say("the platform did not become healthy; stopping")
        platform.stop()
        stop_embedded_database()
        return 1

    base = f"http://{host}:{port}"
    say("")
    say(f"Admin:     {base}/admin/")
    say(f"           {admin_login}")
    say(f"API docs:  {base}/api/docs/")
    say(f"Health:    {base}/healthz")
    if fake_wechat:
        say(f"WeChat:    {fake_wechat} (fake; log in with any code `demo-<name>`)")
    if fake_pay:
        say(f"WeChat Pay: {fake_pay} (fake; what it paid: {fake_pay}/fake/stats)")
    say("Press Ctrl-C to stop.")
    code = platform.watch()
    stop_embedded_database()
    say("all stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
