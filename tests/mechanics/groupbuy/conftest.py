"""The group-buy cast: a live group-buy campaign with a deal, and a way to call the API."""

import time
from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from campaigns.models import Campaign
from mechanics.groupbuy.models import Deal, Tier
from referrals.api.auth import sign
from referrals.models import ApiKey, RewardRule


@pytest.fixture
def gb_campaign(make_campaign):
    return make_campaign(slug="team-buy", kind=Campaign.Kind.GROUP_BUY, status=Campaign.Status.LIVE)


@pytest.fixture
def make_deal(gb_campaign):
    counter = iter(range(1, 1000))

    def make(campaign=None, tiers=(), **overrides) -> Deal:
        fields = {
            "campaign": campaign or gb_campaign,
            "item_code": f"SKU-{next(counter)}",
            "title": "Oolong tea, 500 g",
            "original_price_fen": 9900,
            "group_price_fen": 5900,
            "group_size": 3,
        }
        fields.update(overrides)
        deal = Deal(**fields)
        deal.full_clean()
        deal.save()
        for min_members, price in tiers:
            Tier.objects.create(deal=deal, min_members=min_members, price_fen=price)
        return deal

    return make


@pytest.fixture
def deal(make_deal):
    return make_deal()


@pytest.fixture
def group_rule(gb_campaign):
    """Each member of a completed group gets 100 points."""
    return RewardRule.objects.create(
        campaign=gb_campaign,
        name="Group completed",
        trigger=RewardRule.Trigger.GROUP_COMPLETED,
        beneficiary=RewardRule.Beneficiary.INVITEE,
        kind=RewardRule.Kind.POINTS,
        points=100,
        hold_hours=0,
    )


@pytest.fixture
def server_key(db) -> str:
    raw, prefix, salt, digest = ApiKey.generate()
    ApiKey.objects.create(name="Order service", prefix=prefix, salt=salt, key_hash=digest)
    return raw


def signed(client, key: str, method: str, url: str, body: bytes = b""):
    timestamp = int(time.time())
    headers = {
        "HTTP_X_FISSION_KEY": key.rsplit("_", 1)[0],
        "HTTP_X_FISSION_TIMESTAMP": str(timestamp),
        "HTTP_X_FISSION_SIGNATURE": sign(key, timestamp, body),
    }
    if method == "get":
        return client.get(url, **headers)
    return client.post(url, body, content_type="application/json", **headers)


def json_body(data) -> bytes:
    return orjson.dumps(data)


def hours_ago(hours: float):
    return timezone.now() - timedelta(hours=hours)
