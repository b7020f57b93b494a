"""The group-buy admin: deals with tiers, groups with their actions, the signal outbox."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from mechanics.groupbuy import services
from mechanics.groupbuy.models import Deal, Group, Signal

pytestmark = pytest.mark.django_db


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def groups(deal, make_participant):
    def make(n: int) -> list[Group]:
        made = []
        for _ in range(n):
            group, _ = services.group_open(deal_id=deal.pk, leader=make_participant())
            services.group_join(group_code=group.code, participant=make_participant())
            made.append(group)
        return made

    return make


@pytest.mark.parametrize("model", ["deal", "group", "signal"])
def test_changelists_load_with_a_pinned_query_count(client, ops, groups, django_assert_num_queries, model):
    client.force_login(ops)
    url = reverse(f"admin:groupbuy_{model}_changelist")
    groups(2)
    services.group_cancel(group_id=Group.objects.first().pk)  # some signals
    client.get(url)
    with django_assert_num_queries(PINNED[model]):
        assert client.get(url).status_code == 200
    groups(6)
    for group in Group.objects.filter(status="open")[:3]:
        services.group_cancel(group_id=group.pk)
    with django_assert_num_queries(PINNED[model]):
        assert client.get(url).status_code == 200


PINNED = {"deal": 7, "group": 10, "signal": 7}


def test_ops_expire_now_and_cancel_groups_with_a_report(client, ops, groups):
    client.force_login(ops)
    first, second = groups(2)
    url = reverse("admin:groupbuy_group_changelist")
    response = client.post(url, {"action": "expire_now", "_selected_action": [first.pk]}, follow=True)
    assert Group.objects.get(pk=first.pk).status == "expired"
    assert any("Expired now" in t for t in texts(response))
    response = client.post(url, {"action": "cancel", "_selected_action": [first.pk, second.pk]}, follow=True)
    assert Group.objects.get(pk=second.pk).status == "cancelled"
    assert any("1 refused" in t and "cannot be cancelled" in t for t in texts(response))
    assert Signal.objects.filter(kind="refund").count() == 4
    page = client.get(reverse("admin:groupbuy_group_change", args=[second.pk]))
    assert page.status_code == 200 and second.code in page.content.decode()


def test_a_deal_is_saved_with_tiers_and_the_public_rules_follow(client, ops, gb_campaign):
    client.force_login(ops)
    url = reverse("admin:groupbuy_deal_add")
    form = {
        "campaign": gb_campaign.pk,
        "title": "Tea set",
        "item_code": "TEA-1",
        "is_active": "on",
        "original_price_fen": 20000,
        "group_price_fen": 15000,
        "group_size": 2,
        "max_size": 4,
        "hours": 12,
        "virtual_fill_max_missing": 1,
        "tiers-TOTAL_FORMS": 1,
        "tiers-INITIAL_FORMS": 0,
        "tiers-0-min_members": 4,
        "tiers-0-price_fen": 16000,  # not a drop: refused
    }
    refused = client.post(url, form)
    assert refused.status_code == 200 and "[tier_price]" in refused.content.decode()
    assert not Deal.objects.exists()
    saved = client.post(url, {**form, "tiers-0-price_fen": 12000}, follow=True)
    assert saved.status_code == 200
    deal = Deal.objects.get(item_code="TEA-1")
    assert list(deal.tiers.values_list("min_members", "price_fen")) == [(4, 12000)]
    gb_campaign.refresh_from_db()
    assert "Group buy “Tea set”: ¥150.00 instead of ¥200.00" in gb_campaign.reward_rules_text


def test_analysts_may_look_but_not_act(client, analyst, groups):
    client.force_login(analyst)
    [group] = groups(1)
    url = reverse("admin:groupbuy_group_changelist")
    assert client.get(url).status_code == 200
    client.post(url, {"action": "cancel", "_selected_action": [group.pk]})
    assert Group.objects.get(pk=group.pk).status == "open"


def test_the_deal_list_counts_groups_and_links_to_them(
    client, ops, groups, deal, make_deal, make_participant
):
    client.force_login(ops)
    first, second = groups(2)
    services.group_join(group_code=first.code, participant=make_participant())  # completes it (K = 3)
    services.group_open(deal_id=make_deal().pk, leader=make_participant())  # another deal's group
    page = client.get(reverse("admin:groupbuy_deal_changelist")).content.decode()
    assert f'?deal__id__exact={deal.pk}">1 / 1</a>' in page
    listed = client.get(reverse("admin:groupbuy_group_changelist") + f"?deal__id__exact={deal.pk}")
    assert listed.status_code == 200
    assert [g.pk for g in listed.context["cl"].result_list] == sorted([first.pk, second.pk], reverse=True)
