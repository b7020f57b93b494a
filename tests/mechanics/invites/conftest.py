from decimal import Decimal

import pytest

from campaigns.models import Campaign
from mechanics.invites.models import InviteTask
from mechanics.invites.services import TierSpec, invite_tiers_set


@pytest.fixture
def task_campaign(make_campaign):
    """A live treasure-chest task: 3 valid friends → ¥5, 10 → ¥20; friends count once they
    complete their resume."""
    campaign = make_campaign(
        slug="treasure",
        kind=Campaign.Kind.INVITE_TASK,
        status=Campaign.Status.LIVE,
        valid_event_name="resume_completed",
    )
    InviteTask.objects.create(campaign=campaign, title="Open the treasure chest")
    invite_tiers_set(
        campaign_id=campaign.pk,
        tiers=[
            TierSpec(count=3, amount=Decimal("5.00")),
            TierSpec(count=10, amount=Decimal("20.00"), name="Gold"),
        ],
    )
    campaign.refresh_from_db()
    return campaign
