"""Protection, takeover, expiry (with the beat task) and the race of two distributors'
links opened at once, against the real database."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from config.errors import ConflictError
from mechanics.distribution import services
from mechanics.distribution.models import Binding, Distributor
from mechanics.distribution.tasks import bindings_expire_task
from referrals.models import Event, Reward
from referrals.services.reward_triggers import rewards_for_order
from tests.conftest import share_link_for


def distributor(campaign, who) -> str:
    services.distributor_apply(campaign=campaign, participant=who)
    return share_link_for(campaign, who).code


def pay(campaign, buyer, order_id, amount="100.00"):
    return rewards_for_order(
        campaign_id=campaign.pk, buyer_id=buyer.pk, order_id=order_id, amount=Decimal(amount)
    )


@pytest.mark.django_db
def test_protection_keeps_the_customer_then_another_link_may_take_over(shop, dan, dora, cara):
    dan_code, dora_code = distributor(shop, dan), distributor(shop, dora)
    start = timezone.now()
    first = services.binding_bind(campaign=shop, customer=cara, code=dan_code, now=start)["binding"]
    assert first.protected_until == start + timedelta(days=7) and first.expires_at == start + timedelta(
        days=30
    )

    # within the 7 days' protection: refused, nothing changes
    with pytest.raises(ConflictError) as refused:
        services.binding_bind(campaign=shop, customer=cara, code=dora_code, now=start + timedelta(days=6))
    assert refused.value.code == "binding_protected"
    assert list(Binding.objects.values_list("distributor_id", "status")) == [(dan.pk, "active")]

    # after it: Dora's link takes Cara over; Dan's binding is "replaced"
    result = services.binding_bind(
        campaign=shop, customer=cara, code=dora_code, now=start + timedelta(days=8)
    )
    assert result["outcome"] == "replaced"
    first.refresh_from_db()
    assert first.status == "replaced" and first.replaced_by == result["binding"]
    assert Binding.objects.get(status="active").distributor_id == dora.pk
    # and the next order earns Dora, not Dan
    [reward] = pay(shop, cara, "SO-1")
    assert reward.beneficiary_id == dora.pk
    names = set(Event.objects.filter(campaign_id=shop.pk).values_list("name", flat=True))
    assert {"distribution_bound", "distribution_binding_replaced"} <= names


@pytest.mark.django_db
def test_the_beat_expires_bindings_and_later_orders_earn_nothing(shop, dan, dora, cara, carl):
    dan_code = distributor(shop, dan)
    long_ago = timezone.now() - timedelta(days=31)
    old = services.binding_bind(campaign=shop, customer=cara, code=dan_code, now=long_ago)["binding"]
    fresh = services.binding_bind(campaign=shop, customer=carl, code=dan_code)["binding"]

    # an order after the expiry earns nothing, even before the beat ran
    assert pay(shop, cara, "SO-1") == []

    # when the beat runs (twice: the second finds nothing)
    assert bindings_expire_task.apply().get() == 1
    assert bindings_expire_task.apply().get() == 0

    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.status == "expired" and old.ended_at == old.expires_at
    assert fresh.status == "active"
    assert Event.objects.filter(name="distribution_binding_expired", participant_id=cara.pk).count() == 1
    # and a new link may bind Cara at once, protection or not
    dora_code = distributor(shop, dora)
    assert services.binding_bind(campaign=shop, customer=cara, code=dora_code)["outcome"] == "bound"
    assert pay(shop, carl, "SO-2")[0].beneficiary_id == dan.pk


@pytest.mark.django_db
def test_a_bind_after_an_unnoticed_expiry_ends_the_old_binding_first(shop, dan, dora, cara):
    dan_code, dora_code = distributor(shop, dan), distributor(shop, dora)
    services.binding_bind(
        campaign=shop, customer=cara, code=dan_code, now=timezone.now() - timedelta(days=40)
    )
    assert services.binding_bind(campaign=shop, customer=cara, code=dora_code)["outcome"] == "bound"
    assert sorted(Binding.objects.values_list("status", flat=True)) == ["active", "expired"]


@pytest.mark.django_db
def test_ops_release_a_binding_once(shop, dan, cara, ops):
    code = distributor(shop, dan)
    binding = services.binding_bind(campaign=shop, customer=cara, code=code)["binding"]
    services.binding_release(binding_id=binding.pk, by=ops)
    ended = Binding.objects.get().ended_at
    assert services.binding_release(binding_id=binding.pk, by=ops).ended_at == ended  # idempotent
    assert Binding.objects.get().status == "released" and pay(shop, cara, "SO-1") == []


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_distributors_links_opened_at_once_bind_the_customer_once(make_campaign, make_participant):
    from campaigns.models import Campaign
    from mechanics.distribution.models import DistributionPlan

    campaign = make_campaign(kind=Campaign.Kind.DISTRIBUTION, status=Campaign.Status.LIVE)
    DistributionPlan.objects.create(campaign=campaign, protection_days=7, expiry_days=30)
    sellers = [make_participant() for _ in range(4)]
    codes = [distributor(campaign, s) for s in sellers]
    customer = make_participant()
    barrier = threading.Barrier(len(codes))
    outcomes, errors = [], []

    def open_link(code):
        try:
            barrier.wait()
            outcomes.append(services.binding_bind(campaign=campaign, customer=customer, code=code)["outcome"])
        except ConflictError as refused:
            outcomes.append(refused.code)
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=open_link, args=(c,)) for c in codes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(outcomes) == ["binding_protected"] * 3 + ["bound"]
    assert Binding.objects.filter(customer=customer).count() == 1
    assert Event.objects.filter(name="distribution_bound", participant_id=customer.pk).count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_applications_make_one_distributor(make_campaign, make_participant):
    from campaigns.models import Campaign
    from mechanics.distribution.models import DistributionPlan

    campaign = make_campaign(kind=Campaign.Kind.DISTRIBUTION, status=Campaign.Status.LIVE)
    DistributionPlan.objects.create(campaign=campaign)
    who = make_participant()
    barrier = threading.Barrier(4)
    created, errors = [], []

    def apply():
        try:
            barrier.wait()
            created.append(services.distributor_apply(campaign=campaign, participant=who)[1])
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=apply) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sorted(created) == [False, False, False, True]
    assert Distributor.objects.filter(participant=who).count() == 1
    assert Reward.objects.count() == 0
