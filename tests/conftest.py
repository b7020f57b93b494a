"""The cast of the tests: ops staff, an analyst, and campaigns made the way ops make them."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image

from campaigns.models import Campaign, Channel, PosterTemplate


def pytest_collection_modifyitems(config, items):
    """Every test that commits for real must restore the rows the data migrations made
    (groups, permissions, the first fraud rule set): a transactional test flushes the
    database when it ends, and one without serialized rollback leaves the next test with
    no roles, or (mixed with one that has it) with duplicate content types."""
    offenders = []
    for item in items:
        marker = item.get_closest_marker("django_db")
        transactional = (marker is not None and marker.kwargs.get("transaction")) or (
            "transactional_db" in getattr(item, "fixturenames", ())
        )
        serialized = (marker is not None and marker.kwargs.get("serialized_rollback")) or (
            "django_db_serialized_rollback" in getattr(item, "fixturenames", ())
        )
        if transactional and not serialized:
            offenders.append(item.nodeid)
    if offenders:
        raise pytest.UsageError(
            "Transactional tests need serialized_rollback=True (or the django_db_serialized_rollback"
            " fixture):\n  " + "\n  ".join(offenders)
        )


@pytest.fixture
def eager_tasks():
    """Run Celery tasks in-process when sent (the wiring after commit is what the test checks)."""
    from config.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def ops(db) -> User:
    """Olga, a campaign manager (staff, in the Campaign managers group)."""
    user = User.objects.create_user("olga", password="pw-olga-123", is_staff=True)
    user.groups.add(Group.objects.get(name="Campaign managers"))
    return user


@pytest.fixture
def analyst(db) -> User:
    """Ann, an analyst: may look at campaigns, not change them."""
    user = User.objects.create_user("ann", password="pw-ann-123", is_staff=True)
    user.groups.add(Group.objects.get(name="Analysts"))
    return user


@pytest.fixture
def make_campaign(db):
    counter = iter(range(1, 10_000))

    def make(**overrides) -> Campaign:
        n = next(counter)
        now = timezone.now()
        fields = {
            "name": f"Campaign {n}",
            "slug": f"campaign-{n}",
            "kind": Campaign.Kind.REFERRAL,
            "starts_at": now - timedelta(days=1),
            "ends_at": now + timedelta(days=9),
            "goal_target": 1000,
            "budget_total": Decimal("1000.00"),
        }
        fields.update(overrides)
        campaign = Campaign(**fields)
        campaign.full_clean()
        campaign.save()
        return campaign

    return make


def png_bytes(size=(400, 700), colour="#B71C1C") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def make_template(db, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")

    def make(campaign: Campaign, *, validate: bool = True, **overrides) -> PosterTemplate:
        template = PosterTemplate(
            campaign=campaign,
            name=overrides.pop("name", "Card"),
            avatar_x=10,
            avatar_y=10,
            avatar_size=80,
            nickname_x=100,
            nickname_y=40,
            qr_x=10,
            qr_y=450,
            qr_size=200,
            **overrides,
        )
        template.background.save("bg.png", ContentFile(png_bytes()), save=False)
        if validate:
            template.full_clean()
        template.save()
        return template

    return make


@pytest.fixture
def with_channels():
    def add(campaign: Campaign) -> list[Channel]:
        return [
            Channel.objects.create(
                campaign=campaign, code="moments", name="Moments", spend=Decimal("300.50")
            ),
            Channel.objects.create(campaign=campaign, code="kol", name="KOL", kind=Channel.Kind.KOL),
        ]

    return add


# --- participants --------------------------------------------------------------------
@pytest.fixture
def make_participant(db):
    from referrals.models import Participant

    counter = iter(range(1, 1_000_000))

    def make(**overrides) -> Participant:
        n = next(counter)
        fields = {
            "app_id": "wxfission0demo0001",
            "openid": f"o_test_{n:06d}",
            "nickname": f"Friend {n}",
            "first_device_id": f"device-{n}",
        }
        fields.update(overrides)
        return Participant.objects.create(**fields)

    return make


@pytest.fixture
def api_as():
    """A DRF test client that calls the API as the given participant."""
    from rest_framework.test import APIClient

    from referrals.tokens import token_issue

    def client_for(participant) -> APIClient:
        client = APIClient()
        if participant is not None:
            token = token_issue(participant_id=participant.pk, token_version=participant.token_version)
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return client_for


def share_link_for(campaign, sharer, channel: str = ""):
    """Join (if not yet) and get the sharer's link: what the mini program does."""
    from referrals.services import attribution

    attribution.campaign_join(campaign=campaign, participant=sharer)
    return attribution.share_link_get_or_create(campaign=campaign, sharer=sharer, channel_code=channel)[0]


@pytest.fixture
def sharer(make_participant):
    """Sam, who shares a lot."""
    return make_participant(nickname="Sam", unionid="u_sam")


@pytest.fixture
def invitee(make_participant):
    """Ivy, a friend Sam invites."""
    return make_participant(nickname="Ivy", unionid="u_ivy")


@pytest.fixture
def second_invitee(make_participant):
    """Ike, another friend."""
    return make_participant(nickname="Ike")


@pytest.fixture
def live_campaign(make_campaign):
    from campaigns.models import Campaign

    return make_campaign(
        slug="cold-start",
        status=Campaign.Status.LIVE,
        valid_event_name="resume_completed",
        valid_property="completeness",
        valid_threshold=Decimal("0.6"),
        invite_target=3,
    )
