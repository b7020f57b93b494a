"""Events/s through POST /api/v1/events/ in 500-event batches, each event validated,
idempotent and attributed, against a bare Django view that COPYs the same rows.

    .venv/bin/python -m bench.ingest_batch [--batches 300] [--concurrency 4]
"""

import argparse
import json
import random
from datetime import UTC, datetime, timedelta

from bench.harness import Stack, compare, emit, load, say

TYPES = ["open", "share", "view", "click", "checkin", "custom"]


def make_world(participants: int):
    from campaigns.models import Campaign
    from referrals.models import Participant
    from referrals.services import attribution
    from referrals.tokens import token_issue

    now = datetime.now(UTC)
    campaign = Campaign.objects.create(
        name="Bench",
        slug="bench",
        status=Campaign.Status.LIVE,
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=9),
        goal_target=1_000_000,
    )
    people = Participant.objects.bulk_create(
        Participant(app_id="wxbench", openid=f"o_bench_{i}", first_device_id=f"d{i}")
        for i in range(participants)
    )
    root = people[0]
    attribution.campaign_join(campaign=campaign, participant=root)
    code = attribution.share_link_get_or_create(campaign=campaign, sharer=root)[0].code
    for p in people[1:]:  # everyone joined through the root: every event gets an inviter
        attribution.campaign_join(campaign=campaign, participant=p, code=code)
    tokens = {p.pk: token_issue(participant_id=p.pk, token_version=p.token_version) for p in people}
    return campaign, people, tokens


def make_batches(people, count: int, size: int, tag: str) -> list[tuple[int, bytes]]:
    rng = random.Random(7)
    batches = []
    now = datetime.now(UTC)
    for b in range(count):
        person = people[b % len(people)]
        events = [
            {
                "id": f"{tag}-{b}-{i}",
                "type": rng.choice(TYPES),
                "time": (now - timedelta(seconds=rng.randint(0, 3600))).isoformat(),
                "campaign": "bench",
                "properties": {"page": "home", "n": i},
            }
            for i in range(size)
        ]
        batches.append((person.pk, json.dumps({"events": events}).encode()))
    return batches


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=150)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size = 500
    with Stack(workers=args.workers) as stack:
        from django.db import connection

        _, people, tokens = make_world(200)
        warm = make_batches(people, 20, size, "warm")

        def api_for(batches):
            def make(i):
                pid, body = batches[i]
                headers = {"Content-Type": "application/json", "Authorization": f"Bearer {tokens[pid]}"}
                return "POST", "/api/v1/events/", body, headers

            return make

        def bare_for(batches):
            def make(i):
                return "POST", "/bench/copy-events", batches[i][1], {"Content-Type": "application/json"}

            return make

        load(stack.port, api_for(warm), count=len(warm), concurrency=args.concurrency)
        load(stack.port, bare_for(warm), count=len(warm), concurrency=args.concurrency)
        say(f"{args.rounds} rounds of {args.batches} batches of {size}: ours, then the bare COPY view")
        ours, theirs = compare(
            stack.port,
            lambda tag: api_for(make_batches(people, args.batches, size, tag)),
            lambda tag: bare_for(make_batches(people, args.batches, size, tag)),
            count=args.batches,
            concurrency=args.concurrency,
            rounds=args.rounds,
        )

        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM referrals_event WHERE source = 1")
            stored = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM referrals_event WHERE source = 1 AND inviter_id IS NOT NULL")
            attributed = cursor.fetchone()[0]
        expected = (len(warm) + args.batches * args.rounds) * size
        assert stored == expected, f"stored {stored} events, expected {expected}"
        say(f"stored {stored} events, {attributed} with an inviter; p50 {ours['p50_ms']:.1f} ms per batch")
        emit(
            "ingest_batch",
            ours["rps"] * size,
            "events/s",
            "bare Django view + COPY into a plain table",
            theirs["rps"] * size,
            batch_p50_ms=round(ours["p50_ms"], 1),
            batch_p99_ms=round(ours["p99_ms"], 1),
            concurrency=args.concurrency,
            workers=args.workers,
        )


if __name__ == "__main__":
    main()
