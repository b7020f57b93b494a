"""Campaign stories written through the real services, at chosen times.

The fold reads what committed transactions wrote (it takes events below the oldest
running transaction), so tests that fold use `transactional_db`.
"""

import itertools
from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone

from analytics.services import analytics_rebuild, fold_campaign
from referrals.services import attribution
from referrals.services.events import event_record

DERIVED = {
    "analytics_minute": "minute, channel_id, name",
    "analytics_participant": "participant_id",
    "analytics_retention": "cohort_day, basis, n",
    "analytics_viral": "kind, key",
    "analytics_duration": "metric, minute",
    "analytics_cascade": "root_id",
    "analytics_sharer": "shares, direct_valid",
    "analytics_channel_day": "day, channel_id",
    "analytics_reward_day": "day, channel_id, status",
    "analytics_order": "order_id",
}
COUNTER_COLUMNS = (
    "events, join_events, share_events, open_events, order_events, participants, joined, valid, "
    "referred_joined, referred_valid, parents, sharers, openers, funnel_join, funnel_valid, funnel_d7, "
    "valid_invitees_h"
)


class Story:
    """Tell what happened in a campaign; each step is one service call, committed."""

    def __init__(self, campaign, make_participant):
        self.campaign = campaign
        self.make_participant = make_participant
        self.ids = itertools.count(1)

    def person(self, **fields):
        return self.make_participant(**fields)

    def join(self, participant, *, at: datetime, via=None, link=None, opened_at: datetime | None = None):
        """`participant` joins at `at`: through `via`'s share link (opened just before), with the
        code of `link` (opened earlier by the test), or directly."""
        code = link.code if link is not None else ""
        if via is not None:
            link = self.link(via)
            self.open(link, participant, at=opened_at or at - timedelta(minutes=1))
            code = link.code
        return attribution.campaign_join(campaign=self.campaign, participant=participant, code=code, now=at)[
            "referral"
        ]

    def link(self, sharer, channel: str = ""):
        return attribution.share_link_get_or_create(
            campaign=self.campaign, sharer=sharer, channel_code=channel
        )[0]

    def open(self, link, opener, *, at: datetime):
        with mock.patch("referrals.services.attribution.timezone.now", return_value=at):
            return attribution.share_link_open(
                code=link.code, opener=opener, client_event_id=f"o{next(self.ids)}"
            )

    def event(self, participant, name: str, *, at: datetime, properties: dict | None = None):
        """A mini-program / backend event, written to the log as the services write it."""
        with transaction.atomic():
            event_record(
                participant_id=participant.pk,
                campaign_id=self.campaign.pk,
                name=name,
                client_event_id=f"t{next(self.ids)}",
                occurred_at=at,
                properties=properties,
            )

    def share(self, participant, *, at: datetime, times: int = 1):
        for _ in range(times):
            self.event(participant, "share", at=at)

    def qualify(self, participant, *, at: datetime, name: str | None = None):
        """The business backend reports the qualifying event: the log row and the valid mark together."""
        name = name or self.campaign.valid_event_name
        with transaction.atomic():
            self.event(participant, name, at=at)
            attribution.referral_mark_valid(
                campaign=self.campaign,
                participant_id=participant.pk,
                event_name=name,
                occurred_at=at,
                made_valid=[],
            )


@pytest.fixture
def story(django_db_serialized_rollback, transactional_db, make_campaign, make_participant):
    from referrals.services.partitions import event_partitions_ensure

    # Back-dated events land in daily partitions, never in the default one (whose rows would
    # stop a later test, or the simulator, from creating the partition of their day).
    event_partitions_ensure(start=timezone.now().date() - timedelta(days=14), days_ahead=28)

    def tell(**campaign_fields):
        from campaigns.models import Campaign

        now = timezone.now()
        fields = {
            "status": Campaign.Status.LIVE,
            "valid_event_name": "join",
            "starts_at": now - timedelta(days=8),
            "ends_at": now + timedelta(days=8),
        }
        fields.update(campaign_fields)
        return Story(make_campaign(**fields), make_participant)

    return tell


def snapshot(campaign_id: int) -> dict:
    """Every derived row of the campaign, in a stable order, for comparisons."""
    from django.db import connection

    out = {}
    with connection.cursor() as cur:
        for table, order in DERIVED.items():
            cur.execute(f"SELECT * FROM {table} WHERE campaign_id = %s ORDER BY {order}", [campaign_id])  # noqa: S608
            out[table] = cur.fetchall()
        cur.execute(f"SELECT {COUNTER_COLUMNS} FROM analytics_counter WHERE campaign_id = %s", [campaign_id])  # noqa: S608
        out["analytics_counter"] = cur.fetchall()
    return out


@pytest.fixture
def fold():
    def run(campaign):
        result = fold_campaign(campaign_id=campaign.pk)
        assert result is not None
        return result

    return run


@pytest.fixture
def rebuild():
    return lambda campaign: analytics_rebuild(campaign_id=campaign.pk)
