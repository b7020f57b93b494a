"""Single-event requests/s through POST /api/v1/events/ at 16 concurrent clients, with
p50/p99, against a bare DRF view that inserts one row.

    .venv/bin/python -m bench.ingest_single [--requests 4000] [--concurrency 16]
"""

import argparse
import json
from datetime import UTC, datetime

from bench.harness import Stack, compare, emit, load, say
from bench.ingest_batch import make_world


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with Stack(workers=args.workers) as stack:
        from django.db import connection

        _, people, tokens = make_world(200)
        now = datetime.now(UTC).isoformat()

        def body(tag: str, i: int) -> bytes:  # a fresh event id every request
            event = {
                "id": f"{tag}-{i}",
                "type": "share",
                "time": now,
                "campaign": "bench",
                "properties": {"page": "home"},
            }
            return json.dumps({"events": [event]}).encode()

        def api(tag):
            def make(i):
                pid = people[i % len(people)].pk
                return (
                    "POST",
                    "/api/v1/events/",
                    body(tag, i),
                    {"Content-Type": "application/json", "Authorization": f"Bearer {tokens[pid]}"},
                )

            return make

        def bare(tag):
            def make(i):
                return "POST", "/bench/insert-one", body(tag, i), {"Content-Type": "application/json"}

            return make

        load(stack.port, api("warm"), count=400, concurrency=args.concurrency)
        load(stack.port, bare("warm"), count=400, concurrency=args.concurrency)
        say(f"measuring {args.requests} single-event requests, {args.concurrency} clients…")
        ours, theirs = compare(
            stack.port, api, bare, count=args.requests, concurrency=args.concurrency, rounds=args.rounds
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM referrals_event WHERE source = 1")
            stored = cursor.fetchone()[0]
        assert stored == 400 + args.requests * args.rounds, f"stored {stored}"
        say(
            f"ours p50 {ours['p50_ms']:.1f} ms p99 {ours['p99_ms']:.1f} ms; "
            f"bare p50 {theirs['p50_ms']:.1f} ms p99 {theirs['p99_ms']:.1f} ms"
        )
        emit(
            "ingest_single",
            ours["rps"],
            "requests/s",
            "bare DRF view inserting one row",
            theirs["rps"],
            p50_ms=round(ours["p50_ms"], 1),
            concurrency=args.concurrency,
            workers=args.workers,
        )
        emit(
            "ingest_single_p99_ms", ours["p99_ms"], "ms", "bare DRF view inserting one row", theirs["p99_ms"]
        )


if __name__ == "__main__":
    main()
