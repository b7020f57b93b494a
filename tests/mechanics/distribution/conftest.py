"""The distribution cast: a live distribution campaign with a plan and a 10% commission,
Dan the distributor, and a signed business backend reporting orders."""

import time
from datetime import timedelta
from decimal import Decimal

import orjson
import pytest
from django.utils import timezone

from campaigns.models import Campaign
from mechanics.distribution.models import DistributionPlan
from referrals.api.auth import sign
from referrals.models import ApiKey, RewardRule

R = RewardRule


def commission(campaign, **fields) -> RewardRule:
    defaults = {
        "name": "Commission",
        "trigger": R.Trigger.ORDER_PAID,
        "kind": R.Kind.CASH,
        "amount_kind": R.AmountKind.PERCENT,
        "percent": Decimal("10"),
        "amount_cap": Decimal("50.00"),
        "hold_hours": 72,
    }
    return RewardRule.objects.create(campaign=campaign, **(defaults | fields))


@pytest.fixture
def shop(make_campaign):
    """A live distribution campaign: 7 days' protection, 30 days' binding, anyone may sell."""
    campaign = make_campaign(
        slug="spring-shop",
        kind=Campaign.Kind.DISTRIBUTION,
        status=Campaign.Status.LIVE,
        valid_event_name="order_paid",
    )
    DistributionPlan.objects.create(campaign=campaign, protection_days=7, expiry_days=30)
    commission(campaign)
    return campaign


@pytest.fixture
def dan(make_participant):
    return make_participant(nickname="Dan")


@pytest.fixture
def dora(make_participant):
    return make_participant(nickname="Dora")


@pytest.fixture
def cara(make_participant):
    return make_participant(nickname="Cara")


@pytest.fixture
def carl(make_participant):
    return make_participant(nickname="Carl")


def order(campaign, who, name, order_id, amount=None, when=None) -> dict:
    props = {"order_id": order_id}
    if amount is not None:
        props["amount"] = str(amount)
    return {
        "id": f"{name}-{order_id}",
        "type": name,
        "openid": who.openid,
        "campaign": campaign.slug,
        "time": (when or timezone.now()).isoformat(),
        "properties": props,
    }


@pytest.fixture
def backend(client, django_capture_on_commit_callbacks, eager_tasks):
    """The business backend: POSTs signed server events; their tasks run after commit."""
    raw, prefix, salt, digest = ApiKey.generate()
    ApiKey.objects.create(name="Shop", prefix=prefix, salt=salt, key_hash=digest)

    def send(*events):
        body = orjson.dumps({"events": list(events)})
        ts = int(time.time())
        with django_capture_on_commit_callbacks(execute=True):
            answer = client.post(
                "/api/v1/server/events/",
                body,
                content_type="application/json",
                HTTP_X_FISSION_KEY=raw.rsplit("_", 1)[0],
                HTTP_X_FISSION_TIMESTAMP=str(ts),
                HTTP_X_FISSION_SIGNATURE=sign(raw, ts, body),
            )
        assert answer.status_code == 200, answer.content
        assert answer.json()["rejected"] == 0, answer.content
        return answer.json()

    return send


def later(days: float):
    return timezone.now() + timedelta(days=days)
