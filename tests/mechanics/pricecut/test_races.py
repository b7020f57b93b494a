"""Races with real threads against PostgreSQL: concurrent helps never cut below the floor,
and a double help cuts once."""

import threading

import pytest
from django.db import connection

from mechanics.pricecut import services
from mechanics.pricecut.models import Help, Task
from referrals.models import Event


def race(calls) -> tuple[list, list]:
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
@pytest.mark.parametrize("schedule", ["equal", "random"])
def test_eight_friends_helping_at_once_never_cut_below_the_floor(make_offer, make_participant, schedule):
    # given a task that needs 5 helpers, ten times over
    bounds = {"min_cut_fen": 1000, "max_cut_fen": 3000} if schedule == "random" else {}
    offer = make_offer(helpers_needed=5, schedule=schedule, **bounds)
    for round_ in range(10):
        task, _ = services.cut_task_start(offer_id=offer.pk, starter=make_participant())
        helpers = [make_participant() for _ in range(8)]
        # when eight friends help at the same moment
        results, errors = race(
            [lambda h=h, code=task.code: services.cut_task_help(task_code=code, helper=h) for h in helpers]
        )
        # then five cut the price exactly to the floor and three were told it is done
        assert len(results) == 5, round_
        assert sorted(e.code for e in errors) == ["cut_task_completed"] * 3, errors
        task.refresh_from_db()
        assert (task.status, task.price_fen, task.helper_count) == ("completed", offer.floor_price_fen, 5)
        cuts = list(Help.objects.filter(task=task).order_by("seq").values_list("amount_fen", flat=True))
        assert sum(cuts) == offer.start_price_fen - offer.floor_price_fen
        if schedule == "random":
            assert all(1000 <= c <= 3000 for c in cuts)
        assert Event.objects.filter(name="price_cut_completed", participant_id=task.starter_id).count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_double_help_cuts_once(make_offer, make_participant):
    offer = make_offer(helpers_needed=5)
    task, _ = services.cut_task_start(offer_id=offer.pk, starter=make_participant())
    amy = make_participant()
    results, errors = race([lambda: services.cut_task_help(task_code=task.code, helper=amy)] * 4)
    assert len(results) == 1 and [e.code for e in errors] == ["already_helped"] * 3
    task.refresh_from_db()
    assert task.helper_count == 1 and Help.objects.filter(task=task).count() == 1
    assert Event.objects.filter(name="price_cut_helped", participant_id=amy.pk).count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_double_tap_on_start_makes_one_task(offer, make_participant):
    sue = make_participant()
    results, errors = race([lambda: services.cut_task_start(offer_id=offer.pk, starter=sue)] * 4)
    assert errors == [] and len({t.pk for t, _ in results}) == 1
    assert Task.objects.count() == 1
