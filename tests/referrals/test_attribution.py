import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign, Channel
from config.errors import ApplicationError, ConflictError
from referrals.models import Event, Referral, ShareLink, ShareOpen
from referrals.services import attribution


def join(campaign, participant, code="", **kw):
    return attribution.campaign_join(campaign=campaign, participant=participant, code=code, **kw)


def link_of(campaign, sharer, channel=""):
    attribution.campaign_join(campaign=campaign, participant=sharer)  # no-op when already joined
    return attribution.share_link_get_or_create(campaign=campaign, sharer=sharer, channel_code=channel)[0]


def test_sharing_needs_a_join_first_and_changes_nothing(live_campaign, sharer):
    with pytest.raises(ConflictError) as refused:
        attribution.share_link_get_or_create(campaign=live_campaign, sharer=sharer)
    assert refused.value.code == "join_first"
    assert ShareLink.objects.count() == 0 and Referral.objects.count() == 0


def test_share_link_is_short_unguessable_and_the_same_every_time(live_campaign, sharer):
    Channel.objects.create(campaign=live_campaign, code="moments", name="Moments")
    join(live_campaign, sharer)
    first, created = attribution.share_link_get_or_create(campaign=live_campaign, sharer=sharer)
    again, created_again = attribution.share_link_get_or_create(campaign=live_campaign, sharer=sharer)
    moments = link_of(live_campaign, sharer, "moments")
    assert created and not created_again
    assert first.pk == again.pk and moments.pk != first.pk
    assert len(first.code) <= 32 and len(first.code) >= 16
    assert first.code != moments.code


def test_share_link_for_unknown_channel_is_refused_and_creates_nothing(live_campaign, sharer):
    join(live_campaign, sharer)
    with pytest.raises(ApplicationError) as refused:
        attribution.share_link_get_or_create(campaign=live_campaign, sharer=sharer, channel_code="tv")
    assert refused.value.code == "channel_unknown"
    assert ShareLink.objects.count() == 0


def test_join_through_a_fresh_open_attributes_to_the_sharer(live_campaign, sharer, invitee):
    link = link_of(live_campaign, sharer)
    opened, _ = attribution.share_link_open(
        code=link.code, opener=invitee, client_event_id="o1", ip="1.2.3.4"
    )
    result = join(live_campaign, invitee, link.code)
    edge = result["referral"]
    assert result["created"]
    assert (edge.inviter, edge.root, edge.depth, edge.link, edge.open) == (sharer, sharer, 1, link, opened)
    assert edge.attribution == {"rule": "open_within_window", "open_id": opened.pk, "code": link.code}


def test_depth_and_root_follow_the_chain(live_campaign, sharer, invitee, second_invitee):
    join(live_campaign, invitee, link_of(live_campaign, sharer).code)
    join(live_campaign, second_invitee, link_of(live_campaign, invitee).code)
    edge = Referral.objects.get(campaign=live_campaign, invitee=second_invitee)
    assert (edge.inviter, edge.root, edge.depth) == (invitee, sharer, 2)


def test_second_join_keeps_the_first_attribution_and_says_so(live_campaign, sharer, invitee, second_invitee):
    first_link = link_of(live_campaign, sharer)
    other_link = link_of(live_campaign, second_invitee)
    join(live_campaign, invitee, first_link.code)
    again = join(live_campaign, invitee, other_link.code)
    assert not again["created"]
    assert "first attribution is kept" in again["note"]
    assert Referral.objects.get(campaign=live_campaign, invitee=invitee).inviter == sharer
    assert Referral.objects.filter(campaign=live_campaign, invitee=invitee).count() == 1


@pytest.mark.parametrize("how", ["same_participant", "same_unionid", "same_device"])
def test_self_referral_is_refused(live_campaign, sharer, make_participant, how):
    link = link_of(live_campaign, sharer)
    if how == "same_participant":
        who, device = sharer, ""
    elif how == "same_unionid":
        who, device = make_participant(unionid=sharer.unionid), ""
    else:
        who, device = make_participant(), sharer.first_device_id
    if who == sharer:
        result = join(live_campaign, who, link.code)  # already joined as a root by sharing
        edge = result["referral"]
    else:
        edge = join(live_campaign, who, link.code, device_id=device)["referral"]
        assert edge.attribution["rule"] == "self_referral"
    assert edge.inviter is None and edge.depth == 0


def test_open_older_than_the_window_does_not_attribute(live_campaign, sharer, invitee):
    link = link_of(live_campaign, sharer)
    opened, _ = attribution.share_link_open(code=link.code, opener=invitee, client_event_id="o1")
    ShareOpen.objects.filter(pk=opened.pk).update(
        opened_at=timezone.now() - timedelta(hours=live_campaign.attribution_window_hours + 1)
    )
    edge = join(live_campaign, invitee, link.code)["referral"]
    assert edge.inviter is None
    assert edge.attribution["rule"] == "open_expired"


def test_code_of_another_campaign_or_unknown_code_joins_as_root(
    live_campaign, make_campaign, sharer, invitee, second_invitee
):
    other = make_campaign(status=Campaign.Status.LIVE)
    foreign = link_of(other, sharer)
    assert join(live_campaign, invitee, foreign.code)["referral"].attribution["rule"] == "unknown_code"
    assert join(live_campaign, second_invitee, "nope")["referral"].attribution["rule"] == "unknown_code"


@pytest.mark.parametrize("status", [Campaign.Status.SCHEDULED, Campaign.Status.PAUSED, Campaign.Status.ENDED])
def test_join_and_share_need_a_live_campaign(make_campaign, invitee, status):
    campaign = make_campaign(status=status)
    with pytest.raises(ConflictError, match="not live"):
        join(campaign, invitee)
    with pytest.raises(ConflictError):
        attribution.share_link_get_or_create(campaign=campaign, sharer=invitee)
    assert Referral.objects.count() == 0


def test_open_is_recorded_once_per_client_event_id_with_an_event(live_campaign, sharer, invitee):
    link = link_of(live_campaign, sharer)
    _, created = attribution.share_link_open(
        code=link.code, opener=invitee, client_event_id="o1", ip="1.2.3.4", device_id="d", user_agent="UA"
    )
    _, created_again = attribution.share_link_open(code=link.code, opener=invitee, client_event_id="o1")
    assert created and not created_again
    assert ShareOpen.objects.count() == 1
    opens = Event.objects.filter(name="open", participant_id=invitee.pk)
    assert opens.count() == 1
    assert (opens[0].inviter_id, opens[0].campaign_id) == (sharer.pk, live_campaign.pk)


def test_join_writes_one_join_event_with_attribution(live_campaign, sharer, invitee):
    join(live_campaign, invitee, link_of(live_campaign, sharer).code)
    join(live_campaign, invitee)
    [event] = Event.objects.filter(name="join", participant_id=invitee.pk)
    assert event.inviter_id == sharer.pk and event.source == Event.Source.SYSTEM


def test_valid_on_join_when_the_campaign_says_so(make_campaign, invitee):
    campaign = make_campaign(status=Campaign.Status.LIVE, valid_event_name="join")
    edge = join(campaign, invitee)["referral"]
    assert edge.status == Referral.Status.VALID and edge.valid_at is not None


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_joins_with_different_codes_make_one_edge(make_campaign, make_participant):
    # given an invitee who taps two friends' links at the same moment, eight times over
    campaign = make_campaign(status=Campaign.Status.LIVE)
    sharers = [make_participant() for _ in range(8)]
    codes = [link_of(campaign, s).code for s in sharers]
    invitee = make_participant()
    barrier = threading.Barrier(8)
    results, errors = [], []

    def tap(code):
        try:
            barrier.wait()
            results.append(join(campaign, invitee, code))
        except Exception as exc:  # pragma: no cover - shown by the assert
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=tap, args=(c,)) for c in codes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then exactly one join created the edge and everyone saw the same inviter
    assert errors == []
    assert sum(r["created"] for r in results) == 1
    edges = Referral.objects.filter(campaign=campaign, invitee=invitee)
    assert edges.count() == 1
    assert {r["referral"].inviter_id for r in results} == {edges.get().inviter_id}
    assert Event.objects.filter(name="join", participant_id=invitee.pk).count() == 1


def test_mark_valid_is_conditional_and_respects_the_time_limit(live_campaign, sharer, invitee):
    join(live_campaign, invitee, link_of(live_campaign, sharer).code)
    edge = Referral.objects.get(campaign=live_campaign, invitee=invitee)
    live_campaign.valid_within_hours = 24
    late = edge.joined_at + timedelta(hours=25)
    assert not attribution.referral_mark_valid(
        campaign=live_campaign, participant_id=invitee.pk, event_name="resume_completed", occurred_at=late
    )
    soon = edge.joined_at + timedelta(hours=1)
    assert attribution.referral_mark_valid(
        campaign=live_campaign, participant_id=invitee.pk, event_name="resume_completed", occurred_at=soon
    )
    assert not attribution.referral_mark_valid(
        campaign=live_campaign,
        participant_id=invitee.pk,
        event_name="resume_completed",
        occurred_at=soon + timedelta(hours=1),
    )
    edge.refresh_from_db()
    assert edge.status == Referral.Status.VALID and edge.valid_at == soon
