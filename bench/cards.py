"""Card images/s through GET /api/v1/cards/{code}/image.png on one gunicorn worker (one
core): first every request a different card (an uncached render: the template's avatar,
nickname, QR code and a wrapped message), then the same cards again (cache hits). The
baseline of the uncached figure is the same render in-process, with no HTTP, DB or cache.

    REDIS_CACHE_URL=redis://127.0.0.1:6379/0 .venv/bin/python -m bench.cards [--requests 300]

Set REDIS_CACHE_URL, as production does: without it the cache is Django's per-process
memory cache, which keeps 300 entries (cards and token states together), so with a few
hundred sharers most "cached" requests miss and the second pass renders again.
FISSION_BENCH_DB names the scratch database (default fission_bench) so that two benchmarks
on one server do not drop each other's.
"""

import argparse
import io
import os
import time
from datetime import UTC, datetime, timedelta

from PIL import Image

from bench import harness
from bench.harness import Stack, emit, load, say

MESSAGES = [
    "新春快乐，万事如意！Happy New Year to you and your family",
    "Wishing you health, luck and a year full of good surprises",
    "恭喜发财 — may the Year bring you joy",
]


def make_world(sharers: int):
    from django.core.files.base import ContentFile

    from campaigns.management.commands.seed_demo import _background
    from campaigns.models import Campaign
    from mechanics.cards.models import CardConfig, CardTemplate
    from mechanics.cards.services import card_make
    from referrals.models import Participant
    from referrals.services import attribution
    from referrals.services.participants import participant_set_avatar
    from referrals.tokens import token_issue

    now = datetime.now(UTC)
    campaign = Campaign.objects.create(
        name="Cards",
        slug="cards",
        kind=Campaign.Kind.GREETING_CARD,
        status=Campaign.Status.LIVE,
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=9),
        goal_target=1000,
        valid_event_name="resume_completed",
    )
    CardConfig.objects.create(campaign=campaign, share_title="A card from {nickname}", message_max_length=80)
    template = CardTemplate(
        campaign=campaign,
        name="Lanterns",
        avatar_x=60,
        avatar_y=60,
        avatar_size=140,
        nickname_x=230,
        nickname_y=110,
        nickname_size=40,
        message_x=60,
        message_y=300,
        message_width=600,
        message_size=44,
        qr_x=55,
        qr_y=1055,
        qr_size=220,
    )
    template.background.save("bench.png", _background("#B71C1C", "#FFD54F"), save=False)
    template.save()
    cards = []
    for i in range(sharers):
        p = Participant.objects.create(app_id="wxbench", openid=f"o_card_{i}", nickname=f"Sharer {i}")
        buf = io.BytesIO()
        Image.new("RGB", (300, 300), (i % 255, 80, 160)).save(buf, format="JPEG")
        participant_set_avatar(participant=p, upload=ContentFile(buf.getvalue(), name="a.jpg"))
        attribution.campaign_join(campaign=campaign, participant=p)
        card, _ = card_make(
            campaign=campaign, sharer=p, template_id=template.pk, message=f"{MESSAGES[i % 3]} #{i}"
        )
        cards.append((card.code, token_issue(participant_id=p.pk, token_version=p.token_version)))
    return template, cards


def in_process_rate(template, count: int) -> tuple[float, float]:
    """(uncached renders/s, cache hits/s) in this process, no HTTP or DB."""
    from django.core.cache import cache

    from campaigns import posters
    from mechanics.cards.render import render_card

    avatar = Image.new("RGB", (256, 256), "#3366CC")

    def render(i):
        return render_card(
            template,
            nickname=f"Sharer {i}",
            message=f"{MESSAGES[i % 3]} #{i}",
            qr_payload=posters.share_url(f"code{i:012d}"),
            avatar=avatar,
        )

    render(-1)  # warm the template
    started = time.perf_counter()
    for i in range(count):
        cache.set(f"bench-card:{i}", render(i))
    uncached = count / (time.perf_counter() - started)
    started = time.perf_counter()
    for i in range(count):
        assert cache.get(f"bench-card:{i}") is not None
    cached = count / (time.perf_counter() - started)
    return uncached, cached


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    harness.BENCH_DB = os.environ.get("FISSION_BENCH_DB", harness.BENCH_DB)
    if not os.environ.get("REDIS_CACHE_URL"):
        say("REDIS_CACHE_URL is not set: the 300-entry memory cache will miss on the cached pass")
    with Stack(workers=1, threads=2) as stack:
        template, cards = make_world(args.requests + 1)

        def get(offset):
            def make(i):
                code, token = cards[offset + i]
                return ("GET", f"/api/v1/cards/{code}/image.png", None, {"Authorization": f"Bearer {token}"})

            return make

        load(stack.port, get(0), count=1, concurrency=1)  # warm the template in the worker
        say(f"{args.requests} card images, each a different card, one worker…")
        uncached = load(stack.port, get(1), count=args.requests, concurrency=args.concurrency)
        say("the same cards again (cached)…")
        cached = load(stack.port, get(1), count=args.requests, concurrency=args.concurrency)
        baseline, baseline_cached = in_process_rate(template, 200)
        say(
            f"uncached p50 {uncached['p50_ms']:.1f} ms, p95 {uncached['p95_ms']:.1f} ms; "
            f"cached p50 {cached['p50_ms']:.1f} ms, p95 {cached['p95_ms']:.1f} ms"
        )
        emit(
            "cards_uncached",
            uncached["rps"],
            "card images/s per core",
            "the same render in-process (no HTTP, DB or cache)",
            baseline,
            p50_ms=round(uncached["p50_ms"], 1),
            p95_ms=round(uncached["p95_ms"], 1),
        )
        emit(
            "cards_cached",
            cached["rps"],
            "card images/s per core",
            "the same cards rendered (uncached) through HTTP",
            uncached["rps"],
            p50_ms=round(cached["p50_ms"], 1),
            p95_ms=round(cached["p95_ms"], 1),
        )
        emit(
            "cards_render_in_process",
            baseline,
            "renders/s",
            "cache hits in-process",
            baseline_cached,
        )


if __name__ == "__main__":
    main()
