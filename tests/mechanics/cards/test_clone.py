"""Cloning a card campaign copies its card settings and templates (each with its own copy
of the background), not the cards people made."""

import pytest

from campaigns import services as campaign_services
from campaigns.models import Campaign
from mechanics.cards.clone import (
    CONFIG_FIELDS,
    CONFIG_FIELDS_NOT_COPIED,
    TEMPLATE_FIELDS,
    TEMPLATE_FIELDS_NOT_COPIED,
    card_setup_clone,
)
from mechanics.cards.models import Card, CardConfig, CardReceipt, CardTemplate
from mechanics.cards.services import card_make, card_open
from tests.conftest import share_link_for

pytestmark = pytest.mark.django_db


def field_names(model) -> set[str]:
    return {field.name for field in model._meta.concrete_fields}


def test_each_settings_and_template_field_is_either_copied_or_deliberately_not():
    assert field_names(CardConfig) == set(CONFIG_FIELDS) | set(CONFIG_FIELDS_NOT_COPIED)
    assert field_names(CardTemplate) == set(TEMPLATE_FIELDS) | set(TEMPLATE_FIELDS_NOT_COPIED)


def test_the_hook_is_registered_after_the_reward_rules():
    hooks = [hook.__name__ for hook in campaign_services.CLONE_HOOKS]
    assert hooks.index("reward_rules_clone") < hooks.index(card_setup_clone.__name__)


def test_clone_copies_settings_and_templates_with_their_own_files_not_the_cards(
    card_campaign, make_card_template, sharer, invitee, ops
):
    # given a card campaign whose first template was edited (version 2), a second template
    # switched off, and a card a friend opened
    first = card_campaign.card_templates.get()
    first.caption = "Happy New Year"
    first.save()
    assert first.version == 2
    make_card_template(
        card_campaign, name="Plum blossom", position=1, is_active=False, message_color="#FFD700"
    )
    share_link_for(card_campaign, sharer)
    card, _ = card_make(campaign=card_campaign, sharer=sharer, template_id=first.pk, message="Best wishes")
    card_open(code=card.code, receiver=invitee, client_event_id="open-1")
    assert CardReceipt.objects.filter(card=card).exists()
    # when
    clone = campaign_services.campaign_clone(campaign_id=card_campaign.pk, by=ops)
    # then the settings came along…
    config, config_copy = (
        CardConfig.objects.get(campaign=card_campaign),
        CardConfig.objects.get(campaign=clone),
    )
    assert config_copy.pk != config.pk
    for field in CONFIG_FIELDS:
        assert getattr(config_copy, field) == getattr(config, field), field
    # …and each template, field for field, with a file of its own and its version afresh
    originals = list(CardTemplate.objects.filter(campaign=card_campaign).order_by("id"))
    copies = list(CardTemplate.objects.filter(campaign=clone).order_by("id"))
    assert [t.name for t in copies] == ["Lanterns", "Plum blossom"]
    for original, copy in zip(originals, copies, strict=True):
        for field in TEMPLATE_FIELDS:
            assert getattr(copy, field) == getattr(original, field), (original.name, field)
        assert (copy.width, copy.height) == (original.width, original.height) == (400, 700)
        assert copy.version == 1
        assert copy.background.name != original.background.name
        with original.background.open("rb") as a, copy.background.open("rb") as b:
            assert a.read() == b.read()
    # deleting the original's image leaves the copy's
    first.background.storage.delete(first.background.name)
    assert copies[0].background.storage.exists(copies[0].background.name)
    # …but none of the cards or who received them
    assert not Card.objects.filter(campaign=clone).exists()
    assert not Card.objects.filter(template__in=copies).exists()
    assert not CardReceipt.objects.filter(card__campaign=clone).exists()
    # the public rules describe the copied settings, and the copy passes its launch checks
    clone.refresh_from_db()
    assert "You can make up to 5 cards a day." in clone.reward_rules_text
    assert campaign_services.campaign_launch(campaign_id=clone.pk, by=ops).status == Campaign.Status.LIVE


def test_an_image_share_campaign_is_copied_with_its_captions(image_campaign, ops):
    clone = campaign_services.campaign_clone(campaign_id=image_campaign.pk, by=ops)
    assert clone.card_config.share_title == "Lanterns over the river"
    assert clone.card_templates.get().caption == "Happy Lantern Festival"
    assert campaign_services.campaign_launch(campaign_id=clone.pk, by=ops).status == Campaign.Status.LIVE
