"""What price cuts refuse (at save and at launch) and what their public rules say."""

import pytest
from django.core.exceptions import ValidationError

from campaigns import services as campaign_services
from campaigns.models import Campaign
from config.errors import ConflictError
from mechanics.pricecut.models import Offer
from referrals.services.compliance import campaign_rules_text_refresh

pytestmark = pytest.mark.django_db


@pytest.fixture
def draft(make_campaign):
    return make_campaign(kind=Campaign.Kind.PRICE_CUT)


def launch_refusal(campaign) -> str:
    with pytest.raises(ConflictError) as refused:
        campaign_services.campaign_launch(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    return refused.value.message


def test_a_price_cut_campaign_without_an_offer_cannot_launch(draft):
    assert "[price_cut_needs_offer]" in launch_refusal(draft)


def test_random_cuts_without_reachable_bounds_are_refused_at_save_and_at_launch(draft, make_offer):
    with pytest.raises(ValidationError) as unbounded:
        make_offer(campaign=draft, schedule="random")
    assert "random_needs_bounds" in str(unbounded.value)
    with pytest.raises(ValidationError) as unreachable:
        make_offer(campaign=draft, schedule="random", min_cut_fen=100, max_cut_fen=200)  # 3 × ¥2 < ¥100
    assert "random_bounds_unreachable" in str(unreachable.value)
    assert not Offer.objects.exists()
    # one saved around the form (an import, a shell) is still refused at launch
    Offer.objects.create(
        campaign=draft,
        item_code="X",
        title="X",
        start_price_fen=19900,
        floor_price_fen=9900,
        helpers_needed=3,
        schedule="random",
        min_cut_fen=100,
        max_cut_fen=200,
    )
    assert "[random_bounds_unreachable]" in launch_refusal(draft)


def test_an_offer_must_sit_in_a_price_cut_campaign_with_a_floor_below_the_start(make_offer, make_campaign):
    with pytest.raises(ValidationError) as kind:
        make_offer(campaign=make_campaign())
    assert "campaign" in kind.value.message_dict
    with pytest.raises(ValidationError) as floor:
        make_offer(floor_price_fen=19900)
    assert "floor_price_fen" in floor.value.message_dict


def test_the_rules_publish_the_amounts_helpers_and_bounds(draft, make_offer):
    make_offer(
        campaign=draft, title="Earbuds", start_price_fen=19900, floor_price_fen=13900, helpers_needed=3
    )
    make_offer(
        campaign=draft,
        title="Kettle",
        helpers_needed=5,
        schedule="random",
        min_cut_fen=1000,
        max_cut_fen=3000,
    )
    make_offer(campaign=draft, title="Mug", schedule="decreasing", start_price_fen=1600, floor_price_fen=1000)
    text = campaign_rules_text_refresh(campaign_id=draft.pk)
    assert "Price cut “Earbuds”: from ¥199.00 down to ¥139.00 with 3 friends' help within 24 hours; " in text
    assert "each friend cuts ¥20.00." in text
    assert "between ¥10.00 and ¥30.00, and the last needed friend cuts exactly what is left" in text
    assert "the friends cut, in order: ¥3.00, ¥2.00, ¥1.00" in text
    assert "The exact amount left and the number of friends still needed are always shown." in text
    assert campaign_services.campaign_launch(campaign_id=draft.pk).status == Campaign.Status.LIVE
