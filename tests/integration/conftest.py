"""A real Celery worker process, on the configured broker, against the test database."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def test_database_url() -> str:
    db = connection.settings_dict
    host = db["HOST"] or "127.0.0.1"
    if host.startswith("/"):
        host = quote(host, safe="")
    elif db["PORT"]:
        host = f"{host}:{db['PORT']}"
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{host}/{db['NAME']}"


test_database_url.__test__ = False  # a helper, not a test


def start_worker(
    log_path: Path, *, pool: str = "solo", concurrency: int = 1, **env_extra: str
) -> subprocess.Popen:
    """Start `celery worker` as its own process on the configured broker and the test
    database, and wait until it is ready. It leads a process group of its own (with its
    pool's children, for `pool="prefork"`): `kill_worker` kills them all."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": test_database_url(),
        **env_extra,
    }
    with open(log_path, "a") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter, celery and fixed arguments
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                f"--pool={pool}",
                f"--concurrency={concurrency}",
                "-l",
                "info",
                "-Q",
                "fission-tests",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    start = log_path.read_text().count("ready.")
    while log_path.read_text().count("ready.") <= start:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the Celery worker did not start:\n{log_path.read_text()}")
        time.sleep(0.2)
    return proc


def worker_children(proc: subprocess.Popen) -> list[int]:
    """The pids of the worker's pool processes (Linux: from /proc)."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == proc.pid:  # the field after the state: the parent's pid
            children.append(int(entry))
    return children


def kill_worker(proc: subprocess.Popen) -> None:
    """SIGKILL the worker and every process of its group (its pool's children): nothing is
    acknowledged, nothing is cleaned up, as when a machine dies."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def stop_worker(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
    kill_worker(proc)  # and any pool child left behind


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path):
    """Start `celery worker` as its own process; stop it after the test."""
    log_path = tmp_path / "worker.log"
    log_path.touch()
    proc = start_worker(log_path)
    try:
        yield proc, log_path
    finally:
        stop_worker(proc)
