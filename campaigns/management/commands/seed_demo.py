"""Demo data for `make run`: a Spring Festival greeting-card campaign and a cold-start campaign.

Idempotent: running it again finds what it made and changes nothing.
"""

import io
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from PIL import Image, ImageDraw

from campaigns import services
from campaigns.models import Campaign, Channel, PosterTemplate

SHANGHAI = ZoneInfo("Asia/Shanghai")

CHANNELS = [
    ("wechat_group", "WeChat groups", Channel.Kind.WECHAT_GROUP, Decimal("0.00")),
    ("moments", "Moments", Channel.Kind.MOMENTS, Decimal("0.00")),
    ("chat", "1:1 chat", Channel.Kind.CHAT, Decimal("0.00")),
    ("oa", "Official account", Channel.Kind.OFFICIAL_ACCOUNT, Decimal("0.00")),
    ("poster", "Offline posters", Channel.Kind.OFFLINE_POSTER, Decimal("12000.00")),
    ("kol", "KOL partners", Channel.Kind.KOL, Decimal("50000.00")),
]


def _spring_festival_window(now: datetime) -> tuple[datetime, datetime]:
    """Feb 2 to the end of Feb 11 of the next Spring Festival season, Shanghai time."""
    year = now.astimezone(SHANGHAI).year
    if now >= datetime(year, 2, 12, tzinfo=SHANGHAI):
        year += 1
    return datetime(year, 2, 2, tzinfo=SHANGHAI), datetime(year, 2, 12, tzinfo=SHANGHAI)


def _background(colour: str, accent: str) -> ContentFile:
    img = Image.new("RGB", (750, 1334), colour)
    draw = ImageDraw.Draw(img)
    for i in range(0, 750, 50):  # a simple lattice border, like a paper-cut frame
        draw.rectangle((i + 10, 10, i + 40, 40), outline=accent, width=3)
        draw.rectangle((i + 10, 1294, i + 40, 1324), outline=accent, width=3)
    draw.ellipse((175, 300, 575, 700), outline=accent, width=8)
    draw.rectangle((40, 1040, 290, 1290), fill="#FFFFFF")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return ContentFile(buf.getvalue())


class Command(BaseCommand):
    help = "Create the demo campaigns (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options):
        now = timezone.now()
        start, end = _spring_festival_window(now)
        spring, created_spring = Campaign.objects.get_or_create(
            slug="spring-festival-cards",
            defaults={
                "kind": Campaign.Kind.GREETING_CARD,
                "name": "Spring Festival greeting cards",
                "description": "Send a personal New Year card to family and friends. "
                "Friends who open it and make their own card join the campaign.",
                "rules_text": (
                    "1. Pick a card, add your wishes and send it to friends.\n"
                    "2. A friend who opens your card and makes a card of their own joins the activity.\n"
                    "3. Rewards depend on friends making their own card, never on sharing itself.\n"
                    f"4. The activity runs from {start:%b %d} to {(end - timedelta(seconds=1)):%b %d} "
                    "(Beijing time)."
                ),
                "starts_at": start,
                "ends_at": end,
                "goal_metric": Campaign.GoalMetric.VALID_USERS,
                "goal_target": 1_000_000,
                "budget_total": Decimal("500000.00"),
                "budget_daily": Decimal("80000.00"),
                "attribution_window_hours": 72,
                "valid_event_name": "card_made",
            },
        )
        cold, created_cold = Campaign.objects.get_or_create(
            slug="cold-start",
            defaults={
                "kind": Campaign.Kind.REFERRAL,
                "name": "Cold start: invite friends who build their resume",
                "description": "Invite friends; a friend counts once their resume is 60% complete.",
                "rules_text": (
                    "1. Share your link with friends.\n"
                    "2. A friend counts when they join through your link and complete 60% of their resume "
                    "within 7 days.\n"
                    "3. Nothing is paid for sharing itself."
                ),
                "starts_at": now - timedelta(days=3),
                "ends_at": now + timedelta(days=27),
                "goal_metric": Campaign.GoalMetric.VALID_USERS,
                "goal_target": 20_000,
                "budget_total": Decimal("80000.00"),
                "budget_daily": Decimal("5000.00"),
                "attribution_window_hours": 168,
                "valid_event_name": "resume_completed",
                "valid_property": "completeness",
                "valid_comparison": Campaign.Comparison.GTE,
                "valid_threshold": Decimal("0.6"),
                "valid_within_hours": 168,
            },
        )
        for campaign, colour, accent in ((spring, "#B71C1C", "#FFD54F"), (cold, "#0D47A1", "#90CAF9")):
            for code, name, kind, spend in CHANNELS:
                Channel.objects.get_or_create(
                    campaign=campaign, code=code, defaults={"name": name, "kind": kind, "spend": spend}
                )
            if not campaign.templates.exists():
                template = PosterTemplate(
                    campaign=campaign,
                    name="Default card",
                    is_default=True,
                    avatar_x=60,
                    avatar_y=60,
                    avatar_size=140,
                    nickname_x=230,
                    nickname_y=110,
                    nickname_size=40,
                    nickname_color="#FFFFFF",
                    qr_x=55,
                    qr_y=1055,
                    qr_size=220,
                )
                template.background.save(f"{campaign.slug}.png", _background(colour, accent), save=False)
                template.save()
        if created_spring or spring.status == Campaign.Status.DRAFT:
            services.campaign_launch(campaign_id=spring.pk)  # scheduled: it starts on Feb 2
        if created_cold or cold.status == Campaign.Status.DRAFT:
            services.campaign_launch(campaign_id=cold.pk)  # live now
        for campaign in (spring, cold):
            campaign.refresh_from_db()
            self.stdout.write(f"  {campaign.name}: {campaign.get_status_display().lower()}")
