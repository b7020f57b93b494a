"""Cloning a price-cut campaign copies its offers, not its tasks or helps."""

import pytest

from campaigns import services as campaign_services
from campaigns.models import Campaign
from mechanics.pricecut.clone import OFFER_FIELDS, OFFER_FIELDS_NOT_COPIED, cut_offers_clone
from mechanics.pricecut.models import Help, Offer, Task
from mechanics.pricecut.services import cut_task_help, cut_task_start

pytestmark = pytest.mark.django_db


def test_each_offer_field_is_either_copied_or_deliberately_not():
    fields = {field.name for field in Offer._meta.concrete_fields}
    assert fields == set(OFFER_FIELDS) | set(OFFER_FIELDS_NOT_COPIED)


def test_the_hook_is_registered_after_the_reward_rules():
    hooks = [hook.__name__ for hook in campaign_services.CLONE_HOOKS]
    assert hooks.index("reward_rules_clone") < hooks.index(cut_offers_clone.__name__)


def test_clone_copies_the_offers_not_the_tasks_and_launches(
    pc_campaign, make_offer, cut_rule, make_participant, ops
):
    # given a price-cut campaign with an equal-cuts offer, a random-cuts offer for new users
    # only and a switched-off offer, and a task that a friend helped
    equal = make_offer(hours=48)
    make_offer(
        title="Smart watch",
        start_price_fen=59900,
        floor_price_fen=0,
        helpers_needed=10,
        schedule=Offer.Schedule.RANDOM_CUTS,
        min_cut_fen=1000,
        max_cut_fen=9000,
        new_users_only=True,
    )
    make_offer(title="Old earbuds", is_active=False)
    sam, ivy = make_participant(nickname="Sam"), make_participant(nickname="Ivy")
    task, _ = cut_task_start(offer_id=equal.pk, starter=sam)
    cut_task_help(task_code=task.code, helper=ivy)
    # when
    clone = campaign_services.campaign_clone(campaign_id=pc_campaign.pk, by=ops)
    # then every offer has its copy, field for field
    originals = list(Offer.objects.filter(campaign=pc_campaign).order_by("id"))
    copies = list(Offer.objects.filter(campaign=clone).order_by("id"))
    assert [o.title for o in copies] == ["Wireless earbuds", "Smart watch", "Old earbuds"]
    for original, copy in zip(originals, copies, strict=True):
        assert copy.pk != original.pk
        for field in OFFER_FIELDS:
            assert getattr(copy, field) == getattr(original, field), (original.title, field)
    # …and none of the tasks or helps
    assert not Task.objects.filter(campaign=clone).exists()
    assert not Task.objects.filter(offer__in=copies).exists()
    assert not Help.objects.filter(task__campaign=clone).exists()
    assert Help.objects.filter(task__campaign=pc_campaign).count() == 1
    # the public rules describe the copied offers, and the copy passes its launch checks
    clone.refresh_from_db()
    assert "Price cut “Smart watch”" in clone.reward_rules_text
    assert "Only friends who are new to this campaign may help." in clone.reward_rules_text
    assert "Old earbuds" not in clone.reward_rules_text
    assert clone.reward_rules.get().name == "Price cut completed"
    assert campaign_services.campaign_launch(campaign_id=clone.pk, by=ops).status == Campaign.Status.LIVE
