"""The price-cut cast: a live price-cut campaign with an offer."""

import pytest

from campaigns.models import Campaign
from mechanics.pricecut.models import Offer
from referrals.models import RewardRule


@pytest.fixture
def pc_campaign(make_campaign):
    return make_campaign(slug="cut-it", kind=Campaign.Kind.PRICE_CUT, status=Campaign.Status.LIVE)


@pytest.fixture
def make_offer(pc_campaign):
    counter = iter(range(1, 1000))

    def make(campaign=None, **overrides) -> Offer:
        fields = {
            "campaign": campaign or pc_campaign,
            "item_code": f"SKU-{next(counter)}",
            "title": "Wireless earbuds",
            "start_price_fen": 19900,
            "floor_price_fen": 9900,
            "helpers_needed": 3,
        }
        fields.update(overrides)
        offer = Offer(**fields)
        offer.full_clean()
        offer.save()
        return offer

    return make


@pytest.fixture
def offer(make_offer):
    return make_offer()


@pytest.fixture
def cut_rule(pc_campaign):
    """The starter of a completed price cut gets 50 points."""
    return RewardRule.objects.create(
        campaign=pc_campaign,
        name="Price cut completed",
        trigger=RewardRule.Trigger.PRICE_CUT_COMPLETED,
        beneficiary=RewardRule.Beneficiary.INVITEE,
        kind=RewardRule.Kind.POINTS,
        points=50,
        hold_hours=0,
    )
