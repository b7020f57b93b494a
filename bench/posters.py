"""Posters/s through GET /api/v1/share-links/{code}/poster.png, one gunicorn worker (one
core), every request a different sharer (a render, not a cache hit), once the template
is warm. The baseline is the same render called in-process with no HTTP, DB or cache.

    .venv/bin/python -m bench.posters [--requests 400]
"""

import argparse
import io
import time
from datetime import UTC, datetime, timedelta

from PIL import Image

from bench.harness import Stack, emit, load, say


def make_world(sharers: int):
    from django.core.files.base import ContentFile

    from campaigns.management.commands.seed_demo import _background
    from campaigns.models import Campaign, PosterTemplate
    from referrals.models import Participant
    from referrals.services import attribution
    from referrals.services.participants import participant_set_avatar
    from referrals.tokens import token_issue

    now = datetime.now(UTC)
    campaign = Campaign.objects.create(
        name="Posters",
        slug="posters",
        status=Campaign.Status.LIVE,
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=9),
        goal_target=1000,
    )
    template = PosterTemplate(
        campaign=campaign,
        name="Card",
        is_default=True,
        avatar_x=60,
        avatar_y=60,
        avatar_size=140,
        nickname_x=230,
        nickname_y=110,
        nickname_size=40,
        qr_x=55,
        qr_y=1055,
        qr_size=220,
    )
    template.background.save("bench.png", _background("#B71C1C", "#FFD54F"), save=False)
    template.save()
    links = []
    for i in range(sharers):
        p = Participant.objects.create(app_id="wxbench", openid=f"o_poster_{i}", nickname=f"分享者 {i}")
        buf = io.BytesIO()
        Image.new("RGB", (300, 300), (i % 255, 80, 160)).save(buf, format="JPEG")
        upload = ContentFile(buf.getvalue(), name="a.jpg")
        participant_set_avatar(participant=p, upload=upload)
        attribution.campaign_join(campaign=campaign, participant=p)
        code = attribution.share_link_get_or_create(campaign=campaign, sharer=p)[0].code
        links.append((code, token_issue(participant_id=p.pk, token_version=p.token_version)))
    return template, links


def in_process_rate(template, count: int) -> float:
    from campaigns import posters

    avatar = Image.new("RGB", (256, 256), "#3366CC")
    posters.render_poster(template, nickname="warm", avatar=avatar, qr_payload=posters.share_url("warm"))
    started = time.perf_counter()
    for i in range(count):
        posters.render_poster(
            template, nickname=f"分享者 {i}", avatar=avatar, qr_payload=posters.share_url(f"code{i:012d}")
        )
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    with Stack(workers=1, threads=2) as stack:
        template, links = make_world(args.requests + 1)

        def get(offset):
            def make(i):
                code, token = links[offset + i]
                return (
                    "GET",
                    f"/api/v1/share-links/{code}/poster.png",
                    None,
                    {"Authorization": f"Bearer {token}"},
                )

            return make

        load(stack.port, get(0), count=1, concurrency=1)  # warm the template in the worker
        say(f"{args.requests} posters, each for a different sharer, one worker…")
        ours = load(stack.port, get(1), count=args.requests, concurrency=args.concurrency)
        cached = load(stack.port, get(1), count=args.requests, concurrency=args.concurrency)
        baseline = in_process_rate(template, 200)
        say(
            f"render p50 {ours['p50_ms']:.1f} ms, p95 {ours['p95_ms']:.1f} ms; "
            f"cached p95 {cached['p95_ms']:.1f} ms"
        )
        emit(
            "posters",
            ours["rps"],
            "posters/s per core",
            "the same render in-process (no HTTP, DB or cache)",
            baseline,
            p95_ms=round(ours["p95_ms"], 1),
            p50_ms=round(ours["p50_ms"], 1),
        )
        emit("posters_cached", cached["rps"], "posters/s per core", p95_ms=round(cached["p95_ms"], 1))


if __name__ == "__main__":
    main()
