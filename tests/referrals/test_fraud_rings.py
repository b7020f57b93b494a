"""Identity rings: each kind of link on a hand-built case, NAT hubs that must not merge,
determinism, and a synthetic graph of planted rings hidden among honest users and hubs."""

import itertools
import random

import pytest
from django.utils import timezone

from referrals.models import Participant, Referral, ShareLink, ShareOpen
from referrals.services.fraud_rings import fraud_ring_of, fraud_rings

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(make_participant):
    """n participants with nothing in common (each its own device, no IP, no unionid)."""

    def make(n: int, **fields) -> list[Participant]:
        return [make_participant(**fields) for _ in range(n)]

    return make


@pytest.fixture
def link(live_campaign, make_participant):
    return ShareLink.objects.create(
        code="R1NG0000R1NG0000", campaign=live_campaign, sharer=make_participant()
    )


def _open(link, opener, *, n, device="", ip=None, ua=""):
    return ShareOpen.objects.create(
        link=link,
        opener=opener,
        opened_at=timezone.now(),
        ip=ip,
        device_id=device,
        user_agent=ua,
        client_event_id=f"e{n}",
    )


def test_strangers_form_no_ring(people):
    people(5)
    people(3, first_device_id="")  # no identifier at all is not a shared identifier
    assert fraud_rings() == {}


def test_a_shared_first_device_links(people):
    a, b, c = people(3)
    Participant.objects.filter(pk__in=[a.pk, b.pk]).update(first_device_id="phone-1")
    assert fraud_rings() == {min(a.pk, b.pk): sorted([a.pk, b.pk])}
    assert fraud_ring_of(a.pk) == sorted([a.pk, b.pk]) and fraud_ring_of(c.pk) == []


def test_a_device_seen_at_join_or_at_an_open_links(people, live_campaign, link):
    a, b, c, d = people(4)
    Referral.objects.create(
        campaign=live_campaign,
        invitee=b,
        inviter=link.sharer,
        root=link.sharer,
        depth=1,
        joined_at=timezone.now(),
        joined_device_id=a.first_device_id,  # b joined on a's phone
    )
    _open(link, d, n=1, device=c.first_device_id)  # d opened the link on c's phone
    assert fraud_rings() == {min(a.pk, b.pk): sorted([a.pk, b.pk]), min(c.pk, d.pk): sorted([c.pk, d.pk])}


def test_ip_with_the_same_user_agent_links_but_ip_alone_does_not(people, link):
    a, b, c, d, e = people(5)
    Participant.objects.filter(pk__in=[a.pk, b.pk]).update(first_ip="10.0.0.1", first_user_agent="UA-1")
    Participant.objects.filter(pk=c.pk).update(first_ip="10.0.0.1", first_user_agent="UA-2")  # same office
    _open(link, d, n=1, ip="10.0.0.1", ua="UA-1")  # an open from a's IP with a's browser
    _open(link, e, n=2, ip="10.0.0.9", ua="UA-1")  # same browser elsewhere
    assert fraud_rings() == {min(a.pk, b.pk, d.pk): sorted([a.pk, b.pk, d.pk])}


def test_the_same_payout_account_links(people):
    a, b, c = people(3)
    Participant.objects.filter(pk__in=[a.pk, c.pk]).update(unionid="union-1")
    assert fraud_rings() == {min(a.pk, c.pk): sorted([a.pk, c.pk])}
    assert fraud_ring_of(c.pk) == sorted([a.pk, c.pk]) and fraud_ring_of(b.pk) == []


def test_links_of_different_kinds_chain_into_one_ring(people, link):
    a, b, c, d = people(4)
    Participant.objects.filter(pk__in=[a.pk, b.pk]).update(unionid="union-1")
    Participant.objects.filter(pk=c.pk).update(first_device_id=b.first_device_id)
    _open(link, d, n=1, ip="10.0.0.1", ua="UA-1")
    Participant.objects.filter(pk=c.pk).update(first_ip="10.0.0.1", first_user_agent="UA-1")
    ring = sorted(p.pk for p in (a, b, c, d))
    assert fraud_rings() == {ring[0]: ring}
    assert all(fraud_ring_of(p) == ring for p in ring)


def test_a_nat_hub_shared_by_eleven_does_not_merge_but_ten_do(people):
    hub = people(11)
    Participant.objects.filter(pk__in=[p.pk for p in hub]).update(
        first_ip="100.64.0.1", first_user_agent="WeChat/8.0"
    )
    assert fraud_rings() == {}
    assert fraud_ring_of(hub[0].pk) == []
    assert fraud_rings(max_sharing=11) == {min(p.pk for p in hub): sorted(p.pk for p in hub)}
    Participant.objects.filter(pk=hub[-1].pk).update(first_user_agent="other")  # now 10 share it
    ten = sorted(p.pk for p in hub[:-1])
    assert fraud_rings() == {ten[0]: ten}
    assert fraud_ring_of(hub[0].pk) == ten


def test_a_hub_does_not_merge_rings_it_touches(people):
    a, b, c, d = people(4)
    Participant.objects.filter(pk__in=[a.pk, b.pk]).update(unionid="u-ab")
    Participant.objects.filter(pk__in=[c.pk, d.pk]).update(unionid="u-cd")
    crowd = people(9)
    Participant.objects.filter(pk__in=[a.pk, c.pk, *(p.pk for p in crowd)]).update(first_device_id="kiosk")
    assert fraud_rings() == {min(a.pk, b.pk): sorted([a.pk, b.pk]), min(c.pk, d.pk): sorted([c.pk, d.pk])}


def test_the_same_data_gives_the_same_rings_named_by_their_smallest_member(people):
    ps = people(30)
    rng = random.Random(7)
    accounts: dict[str, list[int]] = {}
    for p in ps:
        unionid = f"u{rng.randrange(8)}"
        Participant.objects.filter(pk=p.pk).update(unionid=unionid)
        accounts.setdefault(unionid, []).append(p.pk)
    first = fraud_rings()
    assert first == fraud_rings() == fraud_rings()
    assert list(first) == sorted(first)
    for cluster_id, members in first.items():
        assert cluster_id == members[0] and members == sorted(members)
        assert fraud_ring_of(members[-1]) == members
    assert sorted(first.values()) == sorted(sorted(m) for m in accounts.values() if len(m) >= 2)


def test_planted_rings_are_found_among_honest_users_and_nat_hubs(people, link):
    rng = random.Random(2024)
    honest = people(300)
    planted: list[list[int]] = []
    for r in range(25):  # rings of 2..9 accounts, each account linked to an earlier one
        ring = people(rng.randint(2, 9))
        ipua: dict[int, tuple[str, str]] = {}  # a participant has one first IP and UA, one unionid
        unionids: dict[int, str] = {}
        for i, p in enumerate(ring[1:], start=1):
            anchor = ring[rng.randrange(i)]
            kind = rng.choice(["device", "ipua", "union", "open_device", "open_ipua"])
            if kind == "device":
                Participant.objects.filter(pk=p.pk).update(first_device_id=anchor.first_device_id)
            elif kind in ("ipua", "open_ipua"):
                ip, ua = ipua.setdefault(anchor.pk, (f"10.{r}.{i}.1", f"UA-{r}"))
                Participant.objects.filter(pk=anchor.pk).update(first_ip=ip, first_user_agent=ua)
                if kind == "ipua":
                    ipua[p.pk] = (ip, ua)
                    Participant.objects.filter(pk=p.pk).update(first_ip=ip, first_user_agent=ua)
                else:
                    _open(link, p, n=r * 100 + i, ip=ip, ua=ua)
            elif kind == "union":
                unionid = unionids.setdefault(anchor.pk, f"ring-{r}-{i}")
                unionids[p.pk] = unionid
                Participant.objects.filter(pk__in=[p.pk, anchor.pk]).update(unionid=unionid)
            else:
                _open(link, p, n=r * 100 + i, device=anchor.first_device_id)
        planted.append(sorted(p.pk for p in ring))
    ring_members = [pk for ring in planted for pk in ring]
    everyone = [p.pk for p in honest] + ring_members
    # NAT hubs (opens from one carrier IP with WeChat's user agent) and shared campus
    # devices: each would join rings and honest users into one blob if it counted
    for h in range(4):
        for n, pk in enumerate(rng.sample(everyone, 30)):
            _open(link, Participant(pk=pk), n=10_000 + h * 100 + n, ip=f"100.64.0.{h}", ua="WeChat")
        for n, pk in enumerate(rng.sample(everyone, 15)):
            _open(link, Participant(pk=pk), n=20_000 + h * 100 + n, device=f"campus-{h}")

    found = fraud_rings()

    def pairs(clusters):
        return {pair for members in clusters for pair in itertools.combinations(sorted(members), 2)}

    truth, got = pairs(planted), pairs(found.values())
    recall = len(truth & got) / len(truth)
    precision = len(truth & got) / len(got)
    assert recall >= 0.95 and precision >= 0.90, (recall, precision)
    assert max(len(m) for m in found.values()) <= max(len(r) for r in planted)
    assert fraud_ring_of(planted[0][-1]) == planted[0]
