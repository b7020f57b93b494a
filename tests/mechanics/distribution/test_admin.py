"""The distribution admin: pages load for a campaign manager, actions work and report."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mechanics.distribution import services
from mechanics.distribution.models import Binding, DistributionOrder, DistributionPlan, Distributor
from referrals.services.reward_triggers import rewards_for_order
from tests.conftest import share_link_for


@pytest.fixture
def manager_client(client, ops):
    client.force_login(ops)
    return client


@pytest.fixture
def filled(shop, dan, dora, cara):
    shop.distribution_plan.admission = "approved"
    shop.distribution_plan.save()
    services.distributor_apply(campaign=shop, participant=dan)
    services.distributor_apply(campaign=shop, participant=dora)
    return shop


@pytest.mark.django_db
@pytest.mark.parametrize("model", [DistributionPlan, Distributor, Binding, DistributionOrder])
def test_changelists_load_for_a_campaign_manager(manager_client, filled, model):
    url = reverse(f"admin:distribution_{model._meta.model_name}_changelist")
    assert manager_client.get(url).status_code == 200


@pytest.mark.django_db
def test_plan_pages_load_and_saving_refreshes_the_public_rules(manager_client, make_campaign):
    from campaigns.models import Campaign

    campaign = make_campaign(kind=Campaign.Kind.DISTRIBUTION)
    assert manager_client.get(reverse("admin:distribution_distributionplan_add")).status_code == 200
    answer = manager_client.post(
        reverse("admin:distribution_distributionplan_add"),
        {"campaign": campaign.pk, "admission": "approved", "protection_days": 10, "expiry_days": 60},
    )
    assert answer.status_code == 302, answer.content
    plan = DistributionPlan.objects.get()
    assert (
        manager_client.get(reverse("admin:distribution_distributionplan_change", args=[plan.pk])).status_code
        == 200
    )
    campaign.refresh_from_db()
    assert "For 10 days no other distributor" in campaign.reward_rules_text
    refused = manager_client.post(
        reverse("admin:distribution_distributionplan_change", args=[plan.pk]),
        {"admission": "approved", "protection_days": 90, "expiry_days": 60},
    )
    assert refused.status_code == 200 and "protection period cannot be longer" in refused.content.decode()
    plan.refresh_from_db()
    assert plan.protection_days == 10


@pytest.mark.django_db
def test_distributor_actions_approve_reject_and_report_refusals(manager_client, filled, dan, dora):
    url = reverse("admin:distribution_distributor_changelist")
    ids = {p: Distributor.objects.get(participant=p).pk for p in (dan, dora)}
    answer = manager_client.post(url, {"action": "approve", "_selected_action": [ids[dan]]}, follow=True)
    assert "Approved: 1 distributor(s)." in answer.content.decode()
    manager_client.post(url, {"action": "reject", "_selected_action": [ids[dora]]})
    answer = manager_client.post(url, {"action": "reject", "_selected_action": [ids[dan]]}, follow=True)
    assert "1 refused" in answer.content.decode()
    assert dict(Distributor.objects.values_list("participant_id", "status")) == {
        dan.pk: "approved",
        dora.pk: "rejected",
    }
    assert Distributor.objects.get(participant=dan).decided_by.username == "olga"


@pytest.mark.django_db
def test_binding_actions_release_and_expire(manager_client, filled, dan, cara, carl, ops):
    services.distributor_decide(distributor_id=Distributor.objects.get(participant=dan).pk, action="approve")
    code = share_link_for(filled, dan).code
    binding = services.binding_bind(campaign=filled, customer=cara, code=code)["binding"]
    url = reverse("admin:distribution_binding_changelist")
    assert manager_client.get(url + "?protected=yes").status_code == 200
    answer = manager_client.post(url, {"action": "release", "_selected_action": [binding.pk]}, follow=True)
    assert "Released: 1 binding(s)." in answer.content.decode()
    answer = manager_client.post(url, {"action": "expire_due", "_selected_action": [binding.pk]}, follow=True)
    assert "Expired 0 binding(s)." in answer.content.decode()
    assert Binding.objects.get().status == "released"


@pytest.mark.django_db
def test_an_analyst_may_look_but_not_act(client, analyst, filled):
    client.force_login(analyst)
    assert client.get(reverse("admin:distribution_binding_changelist")).status_code == 200
    assert client.get(reverse("admin:distribution_distributionplan_add")).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("model", [Distributor, Binding, DistributionOrder])
def test_changelist_queries_do_not_grow_with_rows(manager_client, shop, make_participant, model):
    url = reverse(f"admin:distribution_{model._meta.model_name}_changelist")

    def add_rows(n):
        for _ in range(n):
            seller, buyer = make_participant(), make_participant()
            services.distributor_apply(campaign=shop, participant=seller)
            services.binding_bind(campaign=shop, customer=buyer, code=share_link_for(shop, seller).code)
            rewards_for_order(
                campaign_id=shop.pk, buyer_id=buyer.pk, order_id=f"O{buyer.pk}", amount=Decimal(9)
            )

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert manager_client.get(url).status_code == 200
        return len(captured)

    add_rows(2)
    few = queries()
    add_rows(5)
    assert queries() == few
