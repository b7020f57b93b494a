from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign
from referrals.models import Event, EventReceipt
from referrals.services import attribution
from referrals.services.events import RECEIPT_KEEP, event_receipts_prune, events_ingest
from referrals.services.partitions import event_partitions_ensure, event_partitions_list, partition_name
from tests.conftest import share_link_for


def ev(i, **kw):
    data = {"id": f"e{i}", "type": "share", "time": timezone.now().isoformat(), "campaign": "cold-start"}
    data.update(kw)
    return data


def ingest(participant, events, key="k1"):
    return events_ingest(participant_id=participant.pk, events=events, batch_key=key)


def test_batch_reports_every_event_and_a_bad_one_blocks_nothing(live_campaign, invitee):
    now = timezone.now()
    events = [
        ev(1),
        ev(2, type="Bad Type"),
        ev(3, time="yesterday"),
        ev(4, time=(now - timedelta(days=8)).isoformat()),
        ev(5, time=(now + timedelta(hours=1)).isoformat()),
        ev(6, campaign="no-such-campaign"),
        ev(7, properties=[1, 2]),
        ev(8, properties={"x": "y" * 5000}),
        "not an object",
        ev(1),  # same id again in the batch
        {"type": "share", "time": now.isoformat()},  # no id
        ev(9, time=int(now.timestamp() * 1000), properties={"page": "home"}),
    ]
    result = ingest(invitee, events)
    codes = [r.get("code", r["status"]) for r in result["results"]]
    assert codes == [
        "accepted",
        "event_type_invalid",
        "event_time_invalid",
        "event_too_old",
        "event_in_future",
        "campaign_unknown",
        "properties_invalid",
        "properties_too_large",
        "event_not_object",
        "duplicate",
        "event_id_invalid",
        "accepted",
    ]
    assert (result["accepted"], result["duplicate"], result["rejected"]) == (2, 1, 9)
    assert all(r["message"] for r in result["results"] if r["status"] == "rejected")
    stored = Event.objects.filter(participant_id=invitee.pk).order_by("client_event_id")
    assert [e.client_event_id for e in stored] == ["e1", "e9"]
    assert stored[1].properties == {"page": "home"}


@pytest.fixture(params=["one_statement", "copy"])
def size(request):
    """Batches up to SMALL_BATCH take one statement, larger ones COPY: test both paths."""
    from referrals.services.events import SMALL_BATCH

    return 5 if request.param == "one_statement" else SMALL_BATCH + 10


def test_both_write_paths_take_the_same_batch_the_same_way(live_campaign, invitee, size):
    events = [ev(i, properties={"path": "C:\\x", "n": i}) for i in range(size)]
    events += [
        ev(9000, type="share\n"),
        ev("x\n"),
        ev(9001, properties={"nul": "\x00"}),
        ev(9002, campaign="\x00"),
        ev(9003, properties={"big": 2**70}),
    ]
    result = ingest(invitee, events)
    assert result["accepted"] == size
    assert [r["code"] for r in result["results"][size:]] == [
        "event_type_invalid",
        "event_id_invalid",
        "properties_invalid",
        "campaign_unknown",
        "properties_invalid",
    ]
    stored = Event.objects.filter(participant_id=invitee.pk, source=Event.Source.CLIENT)
    assert stored.count() == size
    assert stored.get(client_event_id="e3").properties == {"path": "C:\\x", "n": 3}
    assert ingest(invitee, events) == result  # and a retry answers the same on either path


def test_retried_batch_changes_nothing_and_answers_the_same(live_campaign, invitee, size):
    events = [ev(i) for i in range(size)] + [ev(99999, type="BAD")]
    first = ingest(invitee, events, key="batch-A")
    again = ingest(invitee, events, key="batch-A")
    assert again == first
    assert Event.objects.filter(participant_id=invitee.pk).count() == size


def test_the_same_events_in_another_batch_are_duplicates(live_campaign, invitee, size):
    ingest(invitee, [ev(i) for i in range(size)], key="A")
    result = ingest(invitee, [ev(i) for i in range(size + 1)], key="B")
    assert [r["status"] for r in result["results"]] == ["duplicate"] * size + ["accepted"]
    assert Event.objects.filter(participant_id=invitee.pk).count() == size + 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_overlapping_batches_in_opposite_orders_all_land_once(make_campaign, make_participant):
    # given two retries of the same 300 events racing, one in reverse order (a backend
    # that re-batched), repeated to give a deadlock every chance
    import threading

    from django.db import connection

    from campaigns.models import Campaign

    make_campaign(slug="cold-start", status=Campaign.Status.LIVE)
    for round_ in range(12):
        person = make_participant()
        events = [ev(f"{round_}-{i}") for i in range(300)]
        batches = (
            [events, list(reversed(events))] if round_ % 2 else [events[:40], list(reversed(events[:40]))]
        )
        barrier = threading.Barrier(len(batches))
        errors = []

        def send(batch, key, barrier=barrier, person=person, errors=errors):
            try:
                barrier.wait()
                events_ingest(participant_id=person.pk, events=batch, batch_key=key)
            except Exception as exc:  # pragma: no cover - shown by the assert
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=send, args=(b, f"k{k}")) for k, b in enumerate(batches)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # then no request failed, and every event is stored exactly once
        assert errors == []
        assert Event.objects.filter(participant_id=person.pk).count() == len(batches[0])


def test_event_ids_are_per_participant(live_campaign, invitee, second_invitee):
    ingest(invitee, [ev(1)])
    assert ingest(second_invitee, [ev(1)])["accepted"] == 1


def test_events_carry_inviter_and_channel_resolved_at_write(live_campaign, sharer, invitee):
    from campaigns.models import Channel

    Channel.objects.create(campaign=live_campaign, code="moments", name="Moments")
    link = share_link_for(live_campaign, sharer, "moments")
    attribution.campaign_join(campaign=live_campaign, participant=invitee, code=link.code)
    ingest(invitee, [ev(1, type="checkin")])
    stored = Event.objects.get(participant_id=invitee.pk, client_event_id="e1")
    assert (stored.inviter_id, stored.channel_id, stored.campaign_id) == (
        sharer.pk,
        link.channel_id,
        live_campaign.pk,
    )
    assert stored.source == Event.Source.CLIENT


def test_client_events_never_make_anyone_valid(live_campaign, sharer, invitee):
    link = share_link_for(live_campaign, sharer)
    attribution.campaign_join(campaign=live_campaign, participant=invitee, code=link.code)
    ingest(invitee, [ev(1, type="resume_completed", properties={"completeness": 0.9})])
    from referrals.models import Referral

    assert Referral.objects.get(campaign=live_campaign, invitee=invitee).status == Referral.Status.JOINED


@pytest.mark.parametrize("status", [Campaign.Status.DRAFT, Campaign.Status.ARCHIVED])
def test_events_for_draft_or_archived_campaigns_are_rejected(make_campaign, invitee, status):
    campaign = make_campaign(status=status)
    result = ingest(invitee, [ev(1, campaign=campaign.slug)])
    assert result["results"][0]["code"] == "campaign_unknown"


def test_event_log_is_partitioned_by_day_with_partitions_ahead(db):
    names = event_partitions_list()
    today = timezone.now().date()
    for offset in range(0, 14):
        assert partition_name(today + timedelta(days=offset)) in names
    assert "referrals_event_default" in names
    # called twice: creates nothing new
    assert event_partitions_ensure() == []
    # a day far ahead gets its partition when beat reaches it
    later = today + timedelta(days=40)
    assert partition_name(later) in event_partitions_ensure(start=later, days_ahead=0)


def test_event_rows_land_in_todays_partition(live_campaign, invitee):
    from django.db import connection

    ingest(invitee, [ev(1)])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partition_name(datetime.now(UTC).date())}")  # noqa: S608
        assert cursor.fetchone()[0] == 1
        cursor.execute("SELECT count(*) FROM referrals_event_default")
        assert cursor.fetchone()[0] == 0
        # Only BRIN indexes, a few pages a partition: the append-only hot path stays cheap.
        # received_at serves time-range reads; id serves the analytics fold's scan (summarized
        # as ranges fill, or an unsummarized range would match every fold's scan).
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'referrals_event' ORDER BY 1")
        assert [row[0] for row in cursor.fetchall()] == [
            "CREATE INDEX analytics_event_id_brin ON ONLY public.referrals_event USING brin (id) "
            "WITH (autosummarize='on')",
            "CREATE INDEX referrals_event_received_brin ON ONLY public.referrals_event "
            "USING brin (received_at)",
        ]


def test_old_receipts_are_pruned_but_recent_ones_kept(live_campaign, invitee):
    ingest(invitee, [ev(1), ev(2)])
    EventReceipt.objects.filter(client_event_id="e1").update(
        received_at=timezone.now() - RECEIPT_KEEP - timedelta(1)
    )
    assert event_receipts_prune() == 1
    assert list(EventReceipt.objects.values_list("client_event_id", flat=True)) == ["e2"]


@pytest.mark.parametrize(
    "props",
    [
        {"城市": "上海", "n": 2},
        {"path": "C:\\dir\\new", "tab": "a\tb", "nl": "line\nline", "quote": '"q"', "nul": "\\N"},
        {"nested": {"list": [1, 2.5, None, True]}, "emoji": "🧧"},
    ],
)
def test_properties_survive_the_copy_exactly(live_campaign, invitee, props):
    ingest(invitee, [ev(1, properties=props)])
    assert Event.objects.get(client_event_id="e1").properties == props
