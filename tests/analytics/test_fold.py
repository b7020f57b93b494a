"""The fold: incremental, exactly once, and equal to a rebuild from the raw log."""

from datetime import timedelta

from django.utils import timezone

from analytics.models import CampaignCounter, Cascade, ParticipantStat

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
