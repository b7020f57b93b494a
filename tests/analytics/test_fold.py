"""The fold: incremental, exactly once, and equal to a rebuild from the raw log."""

import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection, transaction
from django.utils import timezone

from analytics.models import CampaignCounter, Cascade, ParticipantStat
from analytics.services import fold_campaign, fold_live_campaigns
from referrals.models import Event

from .conftest import snapshot


def test_small_tree_is_folded_with_its_shape(story, fold):
    # given: A is a root; B and D joined through A, C through B
    s = story()
    t0 = timezone.now() - timedelta(hours=5)
    a, b, c, d = (s.person() for _ in range(4))
    s.join(a, at=t0)
    s.join(b, at=t0 + timedelta(hours=1), via=a)
    s.join(c, at=t0 + timedelta(hours=2), via=b)
    s.join(d, at=t0 + timedelta(hours=3), via=a)
    # when
    result = fold(s.campaign)
    # then
    assert result["events"] == 4 + 3  # joins and opens
    row = {r.participant_id: r for r in ParticipantStat.objects.filter(campaign_id=s.campaign.pk)}
    assert (row[a.pk].direct_valid, row[a.pk].downstream_valid, row[a.pk].subtree) == (2, 3, 4)
    assert (row[b.pk].direct_valid, row[b.pk].downstream_valid, row[b.pk].subtree) == (1, 1, 2)
    assert row[c.pk].depth == 2 and row[c.pk].root_id == a.pk and row[c.pk].cycle_s == 3600
    assert row[a.pk].opens_generated == 2
    counter = CampaignCounter.objects.get(pk=s.campaign.pk)
    assert (counter.joined, counter.valid, counter.referred_valid, counter.parents) == (4, 4, 3, 2)
    cascade = Cascade.objects.get(campaign_id=s.campaign.pk, root_id=a.pk)
    assert (cascade.size, cascade.s1, cascade.s2, cascade.max_depth) == (4, 4, 6, 2)


def test_incremental_fold_equals_rebuild(story, fold, rebuild):
    s = story()
    t0 = timezone.now() - timedelta(days=3)
    a, b, c, d, e = (s.person() for _ in range(5))
    s.join(a, at=t0)
    fold(s.campaign)
    s.share(a, at=t0 + timedelta(minutes=5), times=3)
    s.join(b, at=t0 + timedelta(hours=1), via=a)
    fold(s.campaign)
    s.join(c, at=t0 + timedelta(hours=2), via=b)
    s.event(b, "visit", at=t0 + timedelta(days=1, hours=1))
    fold(s.campaign)
    s.join(d, at=t0 + timedelta(days=1), via=c)
    s.join(e, at=t0 + timedelta(days=2), via=a)
    s.event(c, "visit", at=t0 + timedelta(days=2, hours=2))
    fold(s.campaign)
    incremental = snapshot(s.campaign.pk)
    # when
    rebuild(s.campaign)
    # then
    d = _diff(snapshot(s.campaign.pk), incremental)
    assert d.get("analytics_counter") is None, d["analytics_counter"]
    assert d.get("analytics_participant") is None, d["analytics_participant"]
    assert d == {}


def _diff(a, b):
    return {k: (a[k], b[k]) for k in a if a[k] != b[k]}


def test_folding_again_changes_nothing(story, fold):
    s = story()
    t0 = timezone.now() - timedelta(hours=3)
    a, b = s.person(), s.person()
    s.join(a, at=t0)
    s.share(a, at=t0, times=2)
    s.join(b, at=t0 + timedelta(hours=1), via=a)
    fold(s.campaign)
    before = snapshot(s.campaign.pk)
    # when: the beat fires again (and again) with nothing new
    again = fold(s.campaign)
    fold(s.campaign)
    # then
    assert again["events"] == 0
    assert snapshot(s.campaign.pk) == before


def test_one_campaign_failing_to_fold_does_not_stop_the_beat_pass_and_a_deleted_one_is_skipped(story):
    # given: two live campaigns with a join each; the first has a time zone PostgreSQL does not
    # know (written past the form's check), so its fold fails on the first local date
    t0 = timezone.now() - timedelta(hours=1)
    broken, fine = story(), story()
    broken.join(broken.person(), at=t0)
    fine.join(fine.person(), at=t0)
    type(broken.campaign).objects.filter(pk=broken.campaign.pk).update(time_zone="Mars/Olympus_Mons")
    # when: the beat's pass folds every live campaign
    result = fold_live_campaigns()
    # then: the broken one is reported as not folded (its batch rolled back), the other folded
    assert result[broken.campaign.pk] is None and result[fine.campaign.pk]["events"] == 1
    assert CampaignCounter.objects.get(pk=fine.campaign.pk).joined == 1
    assert not ParticipantStat.objects.filter(campaign_id=broken.campaign.pk).exists()
    # and a campaign deleted between the listing and its fold is nothing to fold
    assert fold_campaign(campaign_id=broken.campaign.pk + fine.campaign.pk + 1000) is None


def test_a_crash_mid_batch_leaves_nothing_and_the_retry_counts_once(story, fold, rebuild):
    s = story()
    t0 = timezone.now() - timedelta(hours=3)
    a, b, c = s.person(), s.person(), s.person()
    s.join(a, at=t0)
    s.join(b, at=t0 + timedelta(minutes=5), via=a)
    empty = snapshot(s.campaign.pk)
    # when: the fold dies after every table was updated, before it commits
    crash = mock.patch("analytics.services.fold.money_sync", side_effect=RuntimeError("worker killed"))
    with crash, pytest.raises(RuntimeError):
        fold_campaign(campaign_id=s.campaign.pk)
    # then: nothing was kept, not even the watermark
    assert snapshot(s.campaign.pk) == empty
    assert not CampaignCounter.objects.filter(pk=s.campaign.pk).exists()
    s.join(c, at=t0 + timedelta(minutes=9), via=b)
    fold(s.campaign)
    assert CampaignCounter.objects.get(pk=s.campaign.pk).joined == 3
    incremental = snapshot(s.campaign.pk)
    rebuild(s.campaign)
    assert snapshot(s.campaign.pk) == incremental


def test_an_event_committed_after_a_later_one_is_folded_once(story, fold, rebuild):
    # given: a writer takes an event id and holds its transaction open
    s = story()
    t0 = timezone.now() - timedelta(hours=2)
    a, b = s.person(), s.person()
    s.join(a, at=t0)
    s.join(b, at=t0 + timedelta(minutes=1))
    fold(s.campaign)
    holding, release = threading.Event(), threading.Event()

    def slow_writer():
        try:
            with transaction.atomic():
                s.event(a, "visit", at=t0 + timedelta(minutes=30))  # in a savepoint: a subtransaction
                holding.set()
                release.wait(20)
        finally:
            connection.close()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert holding.wait(20)
    s.event(b, "visit", at=t0 + timedelta(minutes=31))  # a later id, committed first
    # when
    first = fold(s.campaign)
    release.set()
    writer.join()
    second = fold(s.campaign)
    third = fold(s.campaign)
    # then: each event once, the later id first
    assert (first["events"], second["events"], third["events"]) == (1, 1, 0)
    visits = list(Event.objects.filter(campaign_id=s.campaign.pk, name="visit").order_by("id"))
    assert [e.participant_id for e in visits] == [a.pk, b.pk]
    assert CampaignCounter.objects.get(pk=s.campaign.pk).events == 4
    incremental = snapshot(s.campaign.pk)
    rebuild(s.campaign)
    assert snapshot(s.campaign.pk) == incremental


def test_concurrent_folds_have_one_writer_and_count_once(story, fold, rebuild):
    s = story()
    t0 = timezone.now() - timedelta(hours=6)
    people = [s.person() for _ in range(12)]
    s.join(people[0], at=t0)
    stop = threading.Event()
    results = []

    def beat():
        try:
            while not stop.is_set():
                results.append(fold_campaign(campaign_id=s.campaign.pk))
        finally:
            connection.close()

    workers = [threading.Thread(target=beat) for _ in range(3)]
    for w in workers:
        w.start()
    for i, p in enumerate(people[1:], start=1):
        s.join(p, at=t0 + timedelta(minutes=i), via=people[(i - 1) // 2])
        s.share(p, at=t0 + timedelta(minutes=i, seconds=30))
    stop.set()
    for w in workers:
        w.join()
    fold(s.campaign)
    # then: some passes found the campaign busy and skipped it; nothing counted twice
    assert any(r is None for r in results) or len(results) >= 3
    counter = CampaignCounter.objects.get(pk=s.campaign.pk)
    assert (counter.joined, counter.share_events, counter.valid) == (12, 11, 12)
    incremental = snapshot(s.campaign.pk)
    rebuild(s.campaign)
    assert snapshot(s.campaign.pk) == incremental


def test_simulated_campaign_folded_by_beat_while_it_is_written_equals_a_rebuild(story, rebuild):
    from referrals.models import Referral
    from simulator.engine import simulate

    stop = threading.Event()

    def beat():
        try:
            while not stop.is_set():
                fold_live_campaigns()
                stop.wait(0.2)
        finally:
            connection.close()

    from referrals.models import FraudRuleSet

    story()  # the partitions
    FraudRuleSet.objects.get_or_create(version=1, defaults={"is_active": True})  # flushed by earlier tests
    worker = threading.Thread(target=beat)
    worker.start()
    try:
        summary = simulate(campaign_slug="sim-fold", participants=150, days=2, seed=5, fraud_rings=1)
    finally:
        stop.set()
        worker.join()
    # reward money is re-read from the ledger at most once a minute: make this pass read it
    CampaignCounter.objects.update(money_synced_at=None)
    fold_live_campaigns()
    campaign = Referral.objects.filter(campaign__slug="sim-fold").first().campaign
    counter = CampaignCounter.objects.get(pk=campaign.pk)
    assert counter.joined == Referral.objects.filter(campaign=campaign).count() > 50
    assert counter.events == Event.objects.filter(campaign_id=campaign.pk).count()
    incremental = snapshot(campaign.pk)
    rebuild(campaign)
    assert _diff(snapshot(campaign.pk), incremental) == {}
    assert summary is not None


def test_the_rebuild_command_gives_the_folded_numbers_and_vacuums(story, fold):
    import io

    from django.core.management import call_command

    # given: a small campaign folded incrementally
    s = story()
    t0 = timezone.now() - timedelta(hours=2)
    a, b = s.person(), s.person()
    s.join(a, at=t0)
    s.share(a, at=t0 + timedelta(minutes=1))
    s.join(b, at=t0 + timedelta(minutes=5), via=a)
    fold(s.campaign)
    incremental = snapshot(s.campaign.pk)
    # when
    out = io.StringIO()
    call_command("analytics_rebuild", "--campaign", s.campaign.slug, stdout=out)
    # then: the same rows, and the rebuilt tables were vacuumed (no dead rows left behind)
    assert snapshot(s.campaign.pk) == incremental
    assert f"{s.campaign.slug}: 4 events, 2 participants" in out.getvalue()  # 2 joins, a share, an open
    assert "vacuumed" in out.getvalue()
    with connection.cursor() as cur:
        cur.execute(
            "SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'analytics_participant'"
        )
        assert cur.fetchone()[0]


def test_two_folds_in_one_transaction(story, fold, rebuild):
    # given: two campaigns with events, folded by one caller inside its own transaction
    first, second = story(), story()
    t0 = timezone.now() - timedelta(hours=4)
    for s in (first, second):
        a, b, c = s.person(), s.person(), s.person()
        s.join(a, at=t0)
        s.share(a, at=t0 + timedelta(minutes=1), times=2)
        s.join(b, at=t0 + timedelta(minutes=5), via=a)
        s.join(c, at=t0 + timedelta(minutes=9), via=b)
    # when: both campaigns, then the first again, in one transaction (its work tables already exist)
    with transaction.atomic():
        one = fold(first.campaign)
        two = fold(second.campaign)
        again = fold(first.campaign)
        live = fold_live_campaigns()
    # then: each campaign's events were folded once, and the tables equal a rebuild
    assert (one["events"], two["events"], again["events"]) == (3 + 2 + 2, 3 + 2 + 2, 0)
    assert all(r is not None and r["events"] == 0 for r in live.values())
    for s in (first, second):
        counter = CampaignCounter.objects.get(pk=s.campaign.pk)
        assert (counter.joined, counter.share_events, counter.parents) == (3, 2, 2)
        incremental = snapshot(s.campaign.pk)
        rebuild(s.campaign)
        assert _diff(snapshot(s.campaign.pk), incremental) == {}
