"""The simulator against the database: service mode and bulk mode write the same campaign,
planted rings are what the fraud engine finds, and the command prints its summary."""

import io
import re
from collections import Counter
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.db import connection

from campaigns.models import Campaign
from referrals.models import FraudCase, Participant, Referral, Reward, ShareLink, ShareOpen
from referrals.services.fraud_rings import fraud_rings
from simulator.engine import simulate
from simulator.engine import summarize as simulate_summary

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SMALL = {
    "participants": 60,
    "days": 1.5,
    "seed": 5,
    "channels": "moments:0.5,groups:0.3,kol:0.2",
    "fraud_rings": 1,
    "ring_size": 4,
    "now": NOW,
}


def _who(campaign: Campaign):
    """openid → the simulator's name for the person, without the campaign's part."""
    prefix = re.compile(rf"^o_demo_s\d+c{campaign.pk}-")
    return lambda openid: prefix.sub("", openid) if openid else None


def snapshot(campaign: Campaign) -> dict:
    """What the campaign looks like, with ids, codes and the campaign's own number left out."""
    who = _who(campaign)
    openid = dict(Participant.objects.values_list("pk", "openid"))
    person = {pk: who(o) for pk, o in openid.items()}
    channel = dict(campaign.channels.values_list("pk", "code"))
    referrals = sorted(
        (
            person[r.invitee_id],
            person.get(r.inviter_id),
            person.get(r.root_id),
            r.depth,
            channel.get(r.channel_id),
            r.status,
            r.joined_at,
            r.valid_at,
            r.valid_event,
            r.attribution.get("rule"),
            r.open_id is not None,
        )
        for r in Referral.objects.filter(campaign=campaign)
    )
    links = sorted(
        (person[s], channel.get(c))
        for s, c in ShareLink.objects.filter(campaign=campaign).values_list("sharer_id", "channel_id")
    )
    opens = sorted(
        (
            person[o.opener_id],
            person[o.link.sharer_id],
            channel.get(o.link.channel_id),
            o.opened_at,
            o.client_event_id,
        )
        for o in ShareOpen.objects.filter(link__campaign=campaign).select_related("link")
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT participant_id, name, source, occurred_at, received_at, inviter_id, channel_id, "
            "client_event_id, properties - 'code' FROM referrals_event WHERE campaign_id = %s",
            [campaign.pk],
        )
        events = Counter(
            (
                person[p],
                name,
                source,
                occurred,
                received,
                person.get(inviter),
                channel.get(ch),
                cid.replace(f"#join:{campaign.pk}", "#join:c"),
                str(props),
            )
            for p, name, source, occurred, received, inviter, ch, cid, props in cursor.fetchall()
        )
        cursor.execute(
            "SELECT count(*) FROM referrals_eventreceipt r "
            "JOIN referrals_participant p ON p.id = r.participant_id WHERE p.openid LIKE %s",
            [f"o_demo_s%c{campaign.pk}-%"],
        )
        receipts = cursor.fetchone()[0]
    visitors = Participant.objects.filter(openid__regex=rf"^o_demo_s\d+c{campaign.pk}-").count()
    return {
        "referrals": referrals,
        "links": links,
        "opens": opens,
        "events": events,
        "receipts": receipts,
        "participants": visitors,
    }


def test_service_mode_and_bulk_mode_write_the_same_campaign(db):
    # given / when: the same seed, once through the services and once with COPY
    by_services = simulate(campaign_slug="sim-services", **SMALL)
    in_bulk = simulate(campaign_slug="sim-bulk", bulk=True, **SMALL)

    # then
    services = snapshot(Campaign.objects.get(slug="sim-services"))
    bulk = snapshot(Campaign.objects.get(slug="sim-bulk"))
    assert len(services["referrals"]) == by_services.participants > 40
    assert sum(services["events"].values()) == by_services.events > 300
    assert services["referrals"] == bulk["referrals"]
    assert services["links"] == bulk["links"]
    assert services["opens"] == bulk["opens"]
    assert services["events"] == bulk["events"]
    assert services["receipts"] == bulk["receipts"]
    assert services["participants"] == bulk["participants"]
    # the settle step grants the same rewards to the same people
    assert (by_services.valid, by_services.rewards, by_services.rewards_amount) == (
        in_bulk.valid,
        in_bulk.rewards,
        in_bulk.rewards_amount,
    )
    assert by_services.rewards > 0


def test_bulk_event_ids_rise_with_the_hour_received_as_when_events_arrive_live(db):
    # given / when: a campaign written with COPY, whose participants act over a day and a half
    simulate(campaign_slug="sim-bulk-ids", bulk=True, settle=False, **SMALL)

    # then: ordered by id, the events' hours received never go back (the fold's BRIN scan on
    # id reads only the newest block ranges because of it)
    campaign = Campaign.objects.get(slug="sim-bulk-ids")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT date_trunc('hour', received_at) FROM referrals_event WHERE campaign_id = %s ORDER BY id",
            [campaign.pk],
        )
        hours = [row[0] for row in cursor.fetchall()]
    assert len(set(hours)) > 20
    assert hours == sorted(hours)


def test_simulating_again_through_the_services_writes_nothing_new(db):
    # given
    first = simulate(campaign_slug="sim-twice", **(SMALL | {"participants": 30, "fraud_rings": 0}))

    # when
    again = simulate(campaign_slug="sim-twice", **(SMALL | {"participants": 30, "fraud_rings": 0}))

    # then
    assert (again.participants, again.events, again.valid, again.rewards) == (
        first.participants,
        first.events,
        first.valid,
        first.rewards,
    )


def test_planted_rings_are_the_rings_the_fraud_engine_finds(db):
    # given / when
    summary = simulate(
        campaign_slug="sim-rings",
        bulk=True,
        **(SMALL | {"participants": 400, "fraud_rings": 3, "ring_size": 6}),
    )

    # then: every identity ring among the simulated people is a planted one, leader included
    campaign = Campaign.objects.get(slug="sim-rings")
    found = list(fraud_rings().values())
    assert summary.rings == 3 and summary.ring_accounts == 18
    assert len(found) == 3
    leaders = set()
    for ring in found:
        assert len(ring) == 7
        invited = Referral.objects.filter(campaign=campaign, invitee_id__in=ring)
        inviters = {r.inviter_id for r in invited if r.inviter_id in ring}
        assert len(inviters) == 1  # six of them were invited by the seventh
        (leader,) = inviters
        accounts = invited.filter(inviter_id=leader)
        assert accounts.count() == 6
        assert len({r.joined_device_id for r in accounts}) == 1  # on one phone
        leaders.add(leader)
    # and the scoring opened a case on each ring's leader, with the signals that give them away
    cases = FraudCase.objects.filter(campaign=campaign)
    assert {c.participant_id for c in cases} == leaders
    for case in cases:
        assert {"same_ip_and_ua", "fast_join", "device_hub"} <= {s["code"] for s in case.signals}
        assert case.band in (FraudCase.Band.REVIEW, FraudCase.Band.DECLINE)
    assert Reward.objects.filter(campaign=campaign).exists()


def test_the_command_prints_its_summary(db):
    # given
    out = io.StringIO()

    # when
    call_command(
        "simulate_campaign",
        "--campaign-slug=sim-command",
        "--participants=80",
        "--days=1",
        "--seed=3",
        "--channels=moments:0.6,kol:0.4",
        "--fraud-rings=1",
        "--ring-size=5",
        "--bulk",
        stdout=out,
        stderr=io.StringIO(),
    )

    # then
    text = out.getvalue()
    joined = Referral.objects.filter(campaign__slug="sim-command").count()
    assert f"participants {joined} joined" in text
    for words in ("valid ", "events ", "rewards ", "rings planted 1 (5 accounts)", "timing plan", "events/s"):
        assert words in text, words
    assert set(Campaign.objects.get(slug="sim-command").channels.values_list("code", flat=True)) == {
        "moments",
        "kol",
    }


def test_the_command_refuses_a_channel_the_campaign_does_not_have(make_campaign, with_channels):
    # given: ops' campaign, live, with moments and KOL channels
    from django.core.management.base import CommandError

    campaign = make_campaign(status=Campaign.Status.LIVE)
    with_channels(campaign)

    # when / then
    with pytest.raises(CommandError, match="no channel tiktok"):
        call_command(
            "simulate_campaign",
            f"--campaign-slug={campaign.slug}",
            "--channels=moments:1,tiktok:1",
            stdout=io.StringIO(),
        )
    assert not campaign.channels.filter(code="tiktok").exists()
    assert not Referral.objects.filter(campaign=campaign).exists()


def test_the_live_trickle_carries_the_backfilled_campaign_on_through_the_services(db):
    # given: a campaign's first day, written in bulk up to half an hour ago
    from datetime import timedelta

    from django.utils import timezone

    from simulator.engine import live_loop

    earlier = timezone.now() - timedelta(minutes=30)
    simulate(
        campaign_slug="sim-live", participants=3000, days=1, seed=9, bulk=True, settle=False, now=earlier
    )
    campaign = Campaign.objects.get(slug="sim-live")
    joined = Referral.objects.filter(campaign=campaign).count()
    before = simulate_summary(campaign).events

    # when: one round of the live loop (it plays what fell due in the last ten minutes, not
    # the twenty before: a restarted platform does not replay hours at once)
    from simulator import model

    params = model.Params(
        participants=3000, days=1, seed=9, channels=(("moments", 0.5), ("groups", 0.3), ("kol", 0.2))
    )
    live_loop(campaign, params, tick=0, rounds=1)

    # then: the same plan carried on, through the services: more events, none twice
    after = simulate_summary(campaign)
    assert after.events > before
    assert after.participants >= joined
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT participant_id, client_event_id FROM referrals_event "
            "WHERE campaign_id = %s GROUP BY 1, 2 HAVING count(*) > 1) twice",
            [campaign.pk],
        )
        assert cursor.fetchone()[0] == 0


def test_settling_pays_commissions_on_orders_and_takes_back_refunded_ones(make_campaign, with_channels):
    # given: ops' campaign, five days old, paying 10 % of each order (at most ¥5) to the inviter
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from referrals.models import RewardRule

    now = timezone.now()
    campaign = make_campaign(
        status=Campaign.Status.LIVE,
        starts_at=now - timedelta(days=5),
        ends_at=now + timedelta(days=5),
        valid_event_name="resume_completed",
        valid_property="completeness",
        valid_threshold=Decimal("0.6"),
        budget_total=Decimal("100000.00"),
    )
    with_channels(campaign)
    RewardRule.objects.create(
        campaign=campaign,
        name="10 % commission",
        trigger="order_paid",
        amount_kind="percent",
        percent=Decimal("10.00"),
        amount_cap=Decimal("5.00"),
    )

    # when
    simulate(campaign_slug=campaign.slug, participants=600, days=5, seed=4, bulk=True, now=now)

    # then
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT properties->>'order_id' FROM referrals_event WHERE campaign_id = %s AND name = %s",
            [campaign.pk, "order_refunded"],
        )
        refunded = {f"order:{order_id}" for (order_id,) in cursor.fetchall()}
    commissions = Reward.objects.filter(campaign=campaign, source__startswith="order:")
    assert commissions.count() > 10
    assert all(Decimal("0") < r.amount <= Decimal("5.00") for r in commissions.exclude(source__in=refunded))
    for reward in commissions.filter(source__in=refunded):
        assert reward.status in (Reward.Status.VOIDED, Reward.Status.CLAWED_BACK), reward.source
