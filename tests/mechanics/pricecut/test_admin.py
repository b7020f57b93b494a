"""The price-cut admin: offers, tasks with their state and actions."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from mechanics.pricecut import services
from mechanics.pricecut.models import Offer, Task

pytestmark = pytest.mark.django_db


@pytest.fixture
def tasks(offer, make_participant):
    def make(n: int) -> list[Task]:
        made = []
        for _ in range(n):
            task, _ = services.cut_task_start(offer_id=offer.pk, starter=make_participant())
            services.cut_task_help(task_code=task.code, helper=make_participant())
            made.append(task)
        return made

    return make


@pytest.mark.parametrize("model", ["offer", "task"])
def test_changelists_load_with_a_pinned_query_count(client, ops, tasks, django_assert_num_queries, model):
    client.force_login(ops)
    url = reverse(f"admin:pricecut_{model}_changelist")
    tasks(2)
    client.get(url)
    with django_assert_num_queries(PINNED[model]):
        assert client.get(url).status_code == 200
    tasks(6)
    with django_assert_num_queries(PINNED[model]):
        assert client.get(url).status_code == 200


PINNED = {"offer": 7, "task": 10}


def test_ops_expire_now_and_cancel_tasks_with_a_report(client, ops, tasks):
    client.force_login(ops)
    first, second = tasks(2)
    url = reverse("admin:pricecut_task_changelist")
    response = client.post(url, {"action": "expire_now", "_selected_action": [first.pk]}, follow=True)
    assert Task.objects.get(pk=first.pk).status == "expired"
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("Expired now" in m for m in messages)
    response = client.post(url, {"action": "cancel", "_selected_action": [first.pk, second.pk]}, follow=True)
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert Task.objects.get(pk=second.pk).status == "cancelled"
    assert any("1 refused" in m for m in messages)
    page = client.get(reverse("admin:pricecut_task_change", args=[second.pk]))
    assert page.status_code == 200 and second.code in page.content.decode()


def test_an_offer_is_saved_from_the_admin_and_the_rules_follow(client, ops, pc_campaign):
    client.force_login(ops)
    url = reverse("admin:pricecut_offer_add")
    form = {
        "campaign": pc_campaign.pk,
        "title": "Kettle",
        "item_code": "K-1",
        "is_active": "on",
        "start_price_fen": 9900,
        "floor_price_fen": 4900,
        "helpers_needed": 5,
        "schedule": "random",
        "hours": 24,
    }
    refused = client.post(url, form)
    assert refused.status_code == 200 and "random_needs_bounds" in refused.content.decode()
    assert not Offer.objects.exists()
    client.post(url, {**form, "min_cut_fen": 500, "max_cut_fen": 1500}, follow=True)
    assert Offer.objects.filter(item_code="K-1").exists()
    pc_campaign.refresh_from_db()
    assert "between ¥5.00 and ¥15.00" in pc_campaign.reward_rules_text
    assert (
        client.get(reverse("admin:pricecut_offer_change", args=[Offer.objects.get().pk])).status_code == 200
    )


def test_the_offer_list_counts_tasks_and_links_to_them(
    client, ops, tasks, offer, make_offer, make_participant
):
    client.force_login(ops)
    first, second = tasks(2)
    services.cut_task_start(offer_id=make_offer().pk, starter=make_participant())  # another offer's task
    services.cut_task_cancel(task_id=first.pk)
    page = client.get(reverse("admin:pricecut_offer_changelist")).content.decode()
    assert f'?offer__id__exact={offer.pk}">1 / 0</a>' in page
    listed = client.get(reverse("admin:pricecut_task_changelist") + f"?offer__id__exact={offer.pk}")
    assert listed.status_code == 200
    assert {t.pk for t in listed.context["cl"].result_list} == {first.pk, second.pk}
