"""Races with real threads against PostgreSQL: the last seat, a double join, a double open."""

import threading

import pytest
from django.db import connection

from config.errors import ConflictError
from mechanics.groupbuy import services
from mechanics.groupbuy.models import Group, Member, Signal
from referrals.models import Event


def race(calls) -> tuple[list, list]:
    """Run each call in its own thread (own database connection), all released at once."""
    barrier = threading.Barrier(len(calls))
    results, errors = [], []

    def run(call):
        try:
            barrier.wait()
            results.append(call())
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_joins_racing_for_the_last_seat_never_overfill_the_group(make_deal, make_participant):
    # given a group of 3 with two seats taken, twenty times over
    deal = make_deal(group_size=3)
    for round_ in range(20):
        leader, second = make_participant(), make_participant()
        group, _ = services.group_open(deal_id=deal.pk, leader=leader)
        services.group_join(group_code=group.code, participant=second)
        racers = [make_participant() for _ in range(4)]
        # when four friends press "join" at the same moment (the K-th and three (K+1)-th)
        results, errors = race(
            [lambda p=p, code=group.code: services.group_join(group_code=code, participant=p) for p in racers]
        )
        # then exactly one got the seat and the others were told the group is full
        assert len(results) == 1, round_
        assert [e.code for e in errors] == ["group_full"] * 3, errors
        group.refresh_from_db()
        assert (group.status, group.member_count) == ("completed", 3)
        assert Member.objects.filter(group=group).count() == 3
        assert Signal.objects.filter(group=group, kind="fulfil").count() == 3
        assert Event.objects.filter(name="group_completed", participant_id=leader.pk).count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_double_tap_on_join_seats_the_member_once(make_deal, make_participant):
    deal = make_deal(group_size=5)
    leader, bob = make_participant(), make_participant()
    group, _ = services.group_open(deal_id=deal.pk, leader=leader)
    results, errors = race([lambda: services.group_join(group_code=group.code, participant=bob)] * 4)
    assert len(results) == 1
    assert all(isinstance(e, ConflictError) and e.code == "already_member" for e in errors), errors
    group.refresh_from_db()
    assert group.member_count == 2 and Member.objects.filter(group=group, participant=bob).count() == 1
    assert Event.objects.filter(name="group_joined", participant_id=bob.pk).count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_double_tap_on_open_makes_one_group(make_deal, make_participant):
    deal = make_deal()
    leader = make_participant()
    results, errors = race([lambda: services.group_open(deal_id=deal.pk, leader=leader)] * 4)
    assert errors == []
    assert len({group.pk for group, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert Group.objects.count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_join_racing_the_deadline_either_joins_a_completed_group_or_is_refunded(
    make_deal, make_participant
):
    # the beat expiring a group while its last member joins: never both, never a lost refund
    from datetime import timedelta

    from django.utils import timezone

    deal = make_deal(group_size=2, hours=1)
    for _ in range(10):
        leader, bob = make_participant(), make_participant()
        opened = timezone.now() - timedelta(minutes=59, seconds=59)
        group, _ = services.group_open(deal_id=deal.pk, leader=leader, now=opened)
        at = group.expires_at - timedelta(milliseconds=1)
        race(
            [
                lambda code=group.code, at=at, bob=bob: services.group_join(
                    group_code=code, participant=bob, now=at
                ),
                lambda gid=group.pk: services.group_close_due(group_id=gid, force=True),
            ]
        )
        group.refresh_from_db()
        if group.status == "completed":
            assert group.member_count == 2 and not Signal.objects.filter(group=group, kind="refund").exists()
        else:
            assert group.status == "expired" and group.member_count == 1
            assert Signal.objects.filter(group=group, kind="refund").count() == 1
            assert not Member.objects.filter(group=group, participant=bob).exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_joining_two_filling_groups_of_a_deal_at_once_takes_one_seat(make_deal, make_participant):
    deal = make_deal(group_size=4)
    for _ in range(10):
        codes = [services.group_open(deal_id=deal.pk, leader=make_participant())[0].code for _ in range(2)]
        bob = make_participant()
        results, errors = race(
            [
                lambda code=code, bob=bob: services.group_join(group_code=code, participant=bob)
                for code in codes
            ]
        )
        assert len(results) == 1 and [e.code for e in errors] == ["already_in_a_group"], errors
        assert Member.objects.filter(participant=bob).count() == 1
        assert Event.objects.filter(name="group_joined", participant_id=bob.pk).count() == 1
