import pytest
from django.core.files.base import ContentFile

from campaigns.models import Campaign
from mechanics.cards.models import CardConfig, CardTemplate
from tests.conftest import png_bytes


@pytest.fixture
def make_card_template(db, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")

    def make(campaign: Campaign, **overrides) -> CardTemplate:
        fields = {
            "name": "Lanterns",
            "avatar_x": 10,
            "avatar_y": 10,
            "avatar_size": 80,
            "nickname_x": 100,
            "nickname_y": 40,
            "message_x": 20,
            "message_y": 140,
            "message_width": 360,
            "message_size": 28,
            "qr_x": 10,
            "qr_y": 450,
            "qr_size": 200,
        }
        fields.update(overrides)
        template = CardTemplate(campaign=campaign, **fields)
        template.background.save("bg.png", ContentFile(png_bytes()), save=False)
        template.full_clean()
        template.save()
        return template

    return make


@pytest.fixture
def card_campaign(make_campaign, make_card_template):
    """A live Spring Festival card campaign: valid users complete their resume."""
    campaign = make_campaign(
        slug="spring-cards",
        kind=Campaign.Kind.GREETING_CARD,
        status=Campaign.Status.LIVE,
        valid_event_name="resume_completed",
    )
    CardConfig.objects.create(
        campaign=campaign,
        share_title="A New Year card from {nickname}",
        message_max_length=40,
        blocked_words="badword\n赌博",
        cards_per_day=5,
    )
    make_card_template(campaign)
    return campaign


@pytest.fixture
def image_campaign(make_campaign, make_card_template):
    campaign = make_campaign(slug="lantern-pics", kind=Campaign.Kind.IMAGE_SHARE, status=Campaign.Status.LIVE)
    CardConfig.objects.create(campaign=campaign, share_title="Lanterns over the river")
    make_card_template(campaign, caption="Happy Lantern Festival")
    return campaign
