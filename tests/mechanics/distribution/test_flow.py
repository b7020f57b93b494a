"""Distribution through the API, end to end: distributors apply and share, customers bind,
the business backend reports orders and refunds, and each distributor sees only their own
customers, orders and commissions."""

import time
from datetime import timedelta
from decimal import Decimal

import orjson
import pytest
from django.utils import timezone

from mechanics.distribution.models import Binding, DistributionOrder, Distributor
from referrals.api.auth import sign
from referrals.models import ApiKey, Event, Referral, Reward
from referrals.services.reward_triggers import rewards_sweep
from tests.conftest import share_link_for

from .conftest import order


def apply_and_share(api_as, campaign, who) -> str:
    answer = api_as(who).post(f"/api/v1/distribution/{campaign.slug}/apply", {}, format="json")
    assert answer.status_code in (200, 201), answer.content
    link = api_as(who).post(f"/api/v1/campaigns/{campaign.slug}/share-links/", {}, format="json")
    assert link.status_code in (200, 201), link.content
    return link.json()["code"]


def bind(api_as, campaign, who, code):
    return api_as(who).post(f"/api/v1/distribution/{campaign.slug}/bind", {"code": code}, format="json")


@pytest.mark.django_db
def test_distributors_earn_on_their_customers_paid_orders_net_of_refunds(
    api_as, shop, dan, dora, cara, carl, sharer, backend
):
    # given: Cara first came into the campaign through Sam's ordinary link (the invite tree)
    share_link_for(shop, sharer)
    sam_code = share_link_for(shop, sharer).code
    assert (
        api_as(cara)
        .post(f"/api/v1/campaigns/{shop.slug}/join", {"code": sam_code}, format="json")
        .status_code
        == 201
    )
    # and Dan and Dora become distributors (anyone may) and get their links
    first = api_as(dan).post(f"/api/v1/distribution/{shop.slug}/apply", {}, format="json")
    assert first.status_code == 201 and first.json()["status"] == "approved"
    assert (
        api_as(dan).post(f"/api/v1/distribution/{shop.slug}/apply", {}, format="json").status_code == 200
    )  # retry
    dan_code = apply_and_share(api_as, shop, dan)
    dora_code = apply_and_share(api_as, shop, dora)

    # when: Cara and Carl open Dan's link and bind; Carl retries
    bound = bind(api_as, shop, cara, dan_code)
    assert bound.status_code == 201 and bound.json()["outcome"] == "bound"
    assert bound.json()["distributor"]["nickname"] == "Dan"
    assert bind(api_as, shop, carl, dan_code).status_code == 201
    again = bind(api_as, shop, carl, dan_code)
    assert again.status_code == 200 and again.json()["outcome"] == "already_bound"
    # and the backend reports two paid orders and a refund of Carl's
    backend(
        order(shop, cara, "order_paid", "SO-1", "100.00"), order(shop, carl, "order_paid", "SO-2", "59.00")
    )
    backend(order(shop, carl, "order_refunded", "SO-2"))

    # then: the commission follows the binding (Dan), not the invite tree (Sam)
    assert Referral.objects.get(campaign=shop, invitee=cara).inviter_id == sharer.pk
    rewards = {r.source: r for r in Reward.objects.filter(campaign=shop)}
    assert rewards["order:SO-1"].beneficiary_id == dan.pk and rewards["order:SO-1"].amount == Decimal("10.00")
    assert rewards["order:SO-2"].status == Reward.Status.VOIDED  # refunded before it was payable
    assert not Reward.objects.filter(beneficiary=sharer).exists()

    customers = api_as(dan).get(f"/api/v1/distribution/{shop.slug}/customers/").json()["results"]
    assert sorted(c["customer"]["nickname"] for c in customers) == ["Cara", "Carl"]
    assert {c["status"] for c in customers} == {"active"}
    orders = api_as(dan).get(f"/api/v1/distribution/{shop.slug}/orders/").json()["results"]
    assert {(o["order_id"], o["amount"], o["refunded"], o["commission"]) for o in orders} == {
        ("SO-1", "100.00", False, "10.00"),
        ("SO-2", "59.00", True, "5.90"),
    }
    commissions = api_as(dan).get(f"/api/v1/distribution/{shop.slug}/commissions/").json()["results"]
    assert {(c["order_id"], c["amount"], c["state"]) for c in commissions} == {
        ("SO-1", "10.00", "held"),
        ("SO-2", "5.90", "voided"),
    }
    held = api_as(dan).get(f"/api/v1/distribution/{shop.slug}/commissions/?state=held").json()["results"]
    assert [c["order_id"] for c in held] == ["SO-1"]
    me = api_as(dan).get(f"/api/v1/distribution/{shop.slug}/me").json()
    assert me["status"] == "approved" and me["active_customers"] == 2
    assert me["commissions"]["held"] == "10.00"

    # and Dora, another distributor, sees none of it; Cara (a customer) has no commissions
    for path in ("customers/", "orders/", "commissions/"):
        assert api_as(dora).get(f"/api/v1/distribution/{shop.slug}/{path}").json()["results"] == []
        assert api_as(cara).get(f"/api/v1/distribution/{shop.slug}/{path}").json()["results"] == []
    assert bind(api_as, shop, cara, dora_code).json()["code"] == "binding_protected"
    mine = api_as(cara).get(f"/api/v1/distribution/{shop.slug}/my-binding").json()
    assert mine["distributor"]["nickname"] == "Dan" and mine["binding"]["status"] == "active"
    answer = api_as(dora).get(f"/api/v1/distribution/{shop.slug}/my-binding")
    assert answer.status_code == 404 and answer.json()["code"] == "not_bound"
    # and the log has the state changes, once each
    names = list(Event.objects.filter(campaign_id=shop.pk).values_list("name", flat=True))
    assert names.count("distribution_bound") == 2 and names.count("distributor_approved") == 2


@pytest.mark.django_db
def test_a_paid_commission_later_refunded_shows_as_clawed_back(api_as, shop, dan, cara, backend):
    code = apply_and_share(api_as, shop, dan)
    bind(api_as, shop, cara, code)
    backend(order(shop, cara, "order_paid", "SO-9", "80.00"))
    Reward.objects.filter(source="order:SO-9").update(status=Reward.Status.PAID)  # paid out meanwhile

    backend(order(shop, cara, "order_refunded", "SO-9"))

    commissions = api_as(dan).get(f"/api/v1/distribution/{shop.slug}/commissions/").json()["results"]
    assert [(c["order_id"], c["amount"], c["state"]) for c in commissions] == [
        ("SO-9", "8.00", "clawed_back")
    ]
    assert (
        api_as(dan).get(f"/api/v1/distribution/{shop.slug}/me").json()["commissions"]["clawed_back"] == "8.00"
    )
    assert Reward.objects.get(source__startswith="clawback:").amount == Decimal("-8.00")


@pytest.mark.django_db
def test_an_order_without_a_binding_earns_nobody_even_with_an_inviter(api_as, shop, dan, cara, backend):
    # given: Cara joined through Dan's link but never bound (say Dan was not a distributor then)
    code = share_link_for(shop, dan).code
    api_as(cara).post(f"/api/v1/campaigns/{shop.slug}/join", {"code": code}, format="json")
    # when
    backend(order(shop, cara, "order_paid", "SO-3", "100.00"))
    # then
    assert not Reward.objects.exists() and not DistributionOrder.objects.exists()


@pytest.mark.django_db
def test_a_suspended_distributor_earns_nothing_until_approved_again(api_as, shop, dan, cara, backend, ops):
    from mechanics.distribution import services

    code = apply_and_share(api_as, shop, dan)
    bind(api_as, shop, cara, code)
    role = Distributor.objects.get(participant=dan)
    services.distributor_decide(distributor_id=role.pk, action="suspend", by=ops)
    backend(order(shop, cara, "order_paid", "SO-4", "100.00"))
    assert not Reward.objects.exists()
    services.distributor_decide(distributor_id=role.pk, action="approve", by=ops)
    backend(order(shop, cara, "order_paid", "SO-5", "100.00"))
    assert list(Reward.objects.values_list("source", "beneficiary_id")) == [("order:SO-5", dan.pk)]
    assert Binding.objects.get().status == Binding.Status.ACTIVE


@pytest.mark.django_db
def test_bad_or_refused_binds_answer_4xx_and_change_nothing(api_as, shop, make_campaign, dan, cara, carl):
    # a sharer who is not a distributor
    plain = share_link_for(shop, carl).code
    answer = bind(api_as, shop, cara, plain)
    assert answer.status_code == 409 and answer.json()["code"] == "not_a_distributor"
    # my own link
    code = apply_and_share(api_as, shop, dan)
    answer = bind(api_as, shop, dan, code)
    assert answer.status_code == 409 and answer.json()["code"] == "binding_self"
    # an unknown code, a missing code, an unknown campaign
    assert bind(api_as, shop, cara, "nope").json()["code"] == "share_link_not_found"
    assert api_as(cara).post(f"/api/v1/distribution/{shop.slug}/bind", {}, format="json").status_code == 400
    assert bind(api_as, shop.__class__(slug="nowhere"), cara, code).status_code == 404
    # a campaign that is not a distribution campaign
    other = make_campaign(status="live")
    answer = api_as(dan).post(f"/api/v1/distribution/{other.slug}/apply", {}, format="json")
    assert answer.status_code == 404 and answer.json()["code"] == "not_a_distribution_campaign"
    # a paused campaign
    shop.status = "paused"
    shop.save()
    answer = bind(api_as, shop, cara, code)
    assert answer.status_code == 409 and answer.json()["code"] == "campaign_not_live"
    assert not Binding.objects.exists()
    assert api_as(None).get(f"/api/v1/distribution/{shop.slug}/customers/").status_code in (401, 403)


@pytest.mark.django_db
def test_approved_only_plans_wait_for_ops(api_as, shop, dan, cara, ops):
    from mechanics.distribution import services

    shop.distribution_plan.admission = "approved"
    shop.distribution_plan.save()
    answer = api_as(dan).post(f"/api/v1/distribution/{shop.slug}/apply", {}, format="json")
    assert answer.status_code == 201 and answer.json()["status"] == "pending"
    code = share_link_for(shop, dan).code
    assert bind(api_as, shop, cara, code).json()["code"] == "not_a_distributor"
    role = Distributor.objects.get(participant=dan)
    services.distributor_decide(distributor_id=role.pk, action="approve", by=ops)
    assert services.distributor_decide(distributor_id=role.pk, action="approve", by=ops).status == "approved"
    assert bind(api_as, shop, cara, code).status_code == 201
    with pytest.raises(Exception) as refused:
        services.distributor_decide(distributor_id=role.pk, action="reject", by=ops)
    assert refused.value.code == "distributor_illegal_transition"


@pytest.mark.django_db
def test_the_reward_sweeper_re_sends_a_lost_order_of_a_bound_buyer_without_inviter(
    api_as, shop, dan, cara, client, eager_tasks
):

    # given: Cara joined on her own (no inviter), then bound to Dan
    api_as(cara).post(f"/api/v1/campaigns/{shop.slug}/join", {}, format="json")
    code = apply_and_share(api_as, shop, dan)
    bind(api_as, shop, cara, code)
    assert Referral.objects.get(campaign=shop, invitee=cara).inviter_id is None
    # and her order's task is lost (the on-commit callbacks never run here)
    raw, prefix, salt, digest = ApiKey.generate()
    ApiKey.objects.create(name="Shop", prefix=prefix, salt=salt, key_hash=digest)
    body = orjson.dumps({"events": [order(shop, cara, "order_paid", "SO-7", "50.00")]})
    ts = int(time.time())
    answer = client.post(
        "/api/v1/server/events/",
        body,
        content_type="application/json",
        HTTP_X_FISSION_KEY=raw.rsplit("_", 1)[0],
        HTTP_X_FISSION_TIMESTAMP=str(ts),
        HTTP_X_FISSION_SIGNATURE=sign(raw, ts, body),
    )
    assert answer.status_code == 200 and not Reward.objects.exists()

    # when the sweeper runs (twice)
    sent = rewards_sweep(now=timezone.now() + timedelta(minutes=5))
    again = rewards_sweep(now=timezone.now() + timedelta(minutes=5))

    # then
    assert sent["order_paid"] == 1 and again["order_paid"] == 0
    assert list(Reward.objects.values_list("source", "beneficiary_id", "amount")) == [
        ("order:SO-7", dan.pk, Decimal("5.00"))
    ]
