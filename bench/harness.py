"""What every benchmark needs: a fresh database, gunicorn on production-like settings,
a load generator over real HTTP, and one JSON line per figure.

Run a benchmark from the repository root: `.venv/bin/python -m bench.ingest_batch`.
With DATABASE_URL set it uses that server (creating and dropping `fission_bench`);
without, the embedded PostgreSQL under var/.
"""

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "fission_bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def emit(
    metric: str,
    value: float,
    unit: str,
    baseline: str | None = None,
    baseline_value: float | None = None,
    **extra,
) -> None:
    line = {"metric": metric, "value": round(value, 2), "unit": unit}
    if baseline is not None and baseline_value:
        line |= {
            "baseline": baseline,
            "baseline_value": round(baseline_value, 2),
            "ratio": round(value / baseline_value, 3),
        }
    line |= extra
    print(json.dumps(line, ensure_ascii=False), flush=True)


def say(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


class Stack:
    """A fresh database and gunicorn with config.settings.bench; Django set up in this process too."""

    def __init__(self, *, workers: int = 2, threads: int = 4, serve: bool = True, keep: bool = False):
        """`keep`: reuse the database if it exists (migrating it) and leave it in place at the
        end, for a benchmark whose data takes long to build (bench.cockpit --keep)."""
        self.keep = keep
        self.workers = workers
        self.threads = threads
        self.serve = serve
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Stack":
        os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.bench"
        from config.env import database_url

        server_url = database_url()
        parts = urlsplit(server_url)
        admin_url = urlunsplit(parts._replace(path="/postgres"))
        self.url = urlunsplit(parts._replace(path=f"/{BENCH_DB}"))
        with psycopg.connect(_dsn(admin_url), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone()
            if exists and self.keep:
                say(f"reusing the database {BENCH_DB} (--keep)")
            else:
                conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
                conn.execute(f"CREATE DATABASE {BENCH_DB}")
        os.environ["DATABASE_URL"] = self.url
        self._admin_url = admin_url
        say("migrating the benchmark database…")
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, check=True)
        import django

        django.setup()
        from django.db import connection

        from bench.baseline import PLAIN_TABLE

        with connection.cursor() as cursor:
            cursor.execute(PLAIN_TABLE)
        if not self.serve:
            return self
        self.port = free_port()
        self.proc = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--worker-class",
                "gthread",
                "--threads",
                str(self.threads),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _ = request("GET", self.port, "/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("gunicorn did not start")
            time.sleep(0.3)
        say(f"gunicorn: {self.workers} workers × {self.threads} threads on port {self.port}")
        return self

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        if self.keep:
            say(f"left the database {BENCH_DB} in place (--keep)")
        else:
            with psycopg.connect(_dsn(self._admin_url), autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        from config.env import stop_embedded_database

        stop_embedded_database()


def _dsn(url: str) -> str:
    import dj_database_url

    db = dj_database_url.parse(url)
    return psycopg.conninfo.make_conninfo(
        dbname=db["NAME"],
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        host=db["HOST"] or None,
        port=str(db["PORT"]) if db["PORT"] else None,
    )


def request(
    method: str,
    port: int,
    path: str,
    body: bytes | None = None,
    headers: dict | None = None,
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, bytes]:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    if own:
        conn.close()
    return response.status, data


def load(
    port: int, make_request: Callable[[int], tuple], *, count: int, concurrency: int, expect: int = 200
) -> dict:
    """Send `count` requests from `concurrency` threads with keep-alive; return rate and latencies."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    counter = iter(range(count))

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            method, path, body, headers = make_request(i)
            start = time.perf_counter()
            try:
                status, data = request(method, port, path, body, headers, conn=conn)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                status, data = request(method, port, path, body, headers, conn=conn)
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                if status != expect:
                    failures.append(f"{status}: {data[:200]!r}")
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. {failures[0]}")
    latencies.sort()
    return {
        "rps": count / wall,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "wall_s": wall,
    }


def compare(
    port: int,
    ours: Callable[[str], Callable],
    theirs: Callable[[str], Callable],
    *,
    count: int,
    concurrency: int,
    rounds: int = 3,
) -> tuple[dict, dict]:
    """Alternate rounds of ours and the baseline (so drift hits both) and keep each side's
    median round by rate. `ours(tag)` / `theirs(tag)` return a request maker for fresh data."""
    mine, base = [], []
    for r in range(rounds):
        mine.append(load(port, ours(f"o{r}"), count=count, concurrency=concurrency))
        base.append(load(port, theirs(f"b{r}"), count=count, concurrency=concurrency))
        say(f"round {r + 1}: ours {mine[-1]['rps']:.0f}/s, baseline {base[-1]['rps']:.0f}/s")

    def median(results):
        return sorted(results, key=lambda x: x["rps"])[len(results) // 2]

    return median(mine), median(base)
