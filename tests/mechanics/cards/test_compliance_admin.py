"""Card compliance refusals, public rules text, and the admin pages and actions."""

import pytest
from django.core.exceptions import ValidationError

from campaigns.models import Campaign
from campaigns.services import campaign_launch
from config.errors import ApplicationError
from mechanics.cards.models import Card, CardConfig
from mechanics.cards.services import card_make
from referrals.models import RewardRule
from referrals.services.attribution import campaign_join
from referrals.services.compliance import campaign_rules_text_refresh


def draft_card_campaign(make_campaign, **overrides):
    return make_campaign(kind=Campaign.Kind.GREETING_CARD, valid_event_name="resume_completed", **overrides)


def refusal_of(campaign) -> str:
    with pytest.raises(ApplicationError) as refused:
        campaign_launch(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    return refused.value.message


def test_launch_refuses_a_card_campaign_without_any_template(make_campaign, make_card_template):
    campaign = draft_card_campaign(make_campaign)
    assert "[card_template_missing]" in refusal_of(campaign)
    make_card_template(campaign)
    # no card settings: the defaults apply, with the campaign's name as the share title
    assert campaign_launch(campaign_id=campaign.pk).status == Campaign.Status.LIVE


def test_a_campaign_with_poster_templates_gets_card_templates(make_campaign, make_template, sharer, api_as):
    # given a greeting-card campaign set up with a poster template only (and no card settings)
    campaign = draft_card_campaign(make_campaign)
    poster = make_template(campaign, is_default=True)
    assert campaign_launch(campaign_id=campaign.pk).status == Campaign.Status.LIVE
    # when a sharer asks for the templates (twice)
    sam = api_as(sharer)
    sam.post(f"/api/v1/campaigns/{campaign.slug}/join", {}, format="json")
    listing = sam.get(f"/api/v1/campaigns/{campaign.slug}/card-templates/").json()
    sam.get(f"/api/v1/campaigns/{campaign.slug}/card-templates/")
    # then one card template was made from the poster, and cards work
    [template] = campaign.card_templates.all()
    assert [t["id"] for t in listing["templates"]] == [template.pk]
    assert (template.background.name, template.qr_y, template.width) == (poster.background.name, 450, 400)
    template.full_clean()
    made = sam.post(
        f"/api/v1/campaigns/{campaign.slug}/cards/", {"template": template.pk, "message": "Hi"}, format="json"
    )
    assert made.status_code == 201 and made.json()["share_title"] == campaign.name
    assert sam.get(made.json()["image_url"]).status_code == 200


def test_launch_refuses_clickbait_share_titles_and_captions(make_campaign, make_card_template):
    campaign = draft_card_campaign(make_campaign)
    CardConfig.objects.create(campaign=campaign, share_title="Free cash every day!")
    template = make_card_template(campaign)
    type(template).objects.filter(pk=template.pk).update(caption="免费领红包")
    message = refusal_of(campaign)
    assert "[card_clickbait] The share title" in message and "“Lanterns”: [card_clickbait]" in message


def test_config_and_template_forms_refuse_clickbait(make_campaign, make_card_template):
    campaign = draft_card_campaign(make_campaign)
    with pytest.raises(ValidationError) as refused:
        CardConfig(campaign=campaign, share_title="Click to claim your prize").full_clean()
    assert "share_title" in refused.value.message_dict
    with pytest.raises(ValidationError) as refused:
        make_card_template(campaign, caption="天天领现金")
    assert "caption" in refused.value.message_dict


def test_card_settings_refuse_a_campaign_of_another_kind(make_campaign):
    with pytest.raises(ValidationError) as refused:
        CardConfig(campaign=make_campaign(), share_title="Cards").full_clean()
    assert "campaign" in refused.value.message_dict


def test_launch_refuses_rewarding_making_or_opening_cards(make_campaign, make_card_template):
    campaign = draft_card_campaign(make_campaign)
    CardConfig.objects.create(campaign=campaign, share_title="Cards")
    make_card_template(campaign)
    RewardRule.objects.create(
        campaign=campaign, name="¥1 a card", trigger="event", trigger_event="card_made", amount="1.00"
    )
    assert "[no_reward_for_card_sharing]" in refusal_of(campaign)


def test_image_share_needs_a_caption(make_campaign, make_card_template):
    campaign = make_campaign(kind=Campaign.Kind.IMAGE_SHARE, valid_event_name="resume_completed")
    CardConfig.objects.create(campaign=campaign, share_title="Lanterns")
    make_card_template(campaign)
    assert "“Lanterns”: [caption_needed]" in refusal_of(campaign)


def test_rules_text_says_what_the_card_mechanic_does(card_campaign, image_campaign):
    text = campaign_rules_text_refresh(campaign_id=card_campaign.pk)
    assert "greeting of up to 40 characters" in text
    assert "up to 5 cards a day" in text
    assert "never earns a reward by itself" in text
    assert "fixed caption" in campaign_rules_text_refresh(campaign_id=image_campaign.pk)


# --- admin ---------------------------------------------------------------------------------
@pytest.fixture
def sams_card(card_campaign, sharer):
    campaign_join(campaign=card_campaign, participant=sharer)
    card, _ = card_make(
        campaign=card_campaign, sharer=sharer, template_id=card_campaign.card_templates.get().pk, message="Hi"
    )
    return card


def test_admin_pages_load_for_a_campaign_manager(client, ops, card_campaign, sams_card):
    client.force_login(ops)
    config = card_campaign.card_config
    template = card_campaign.card_templates.get()
    for url in (
        "/admin/cards/cardconfig/",
        f"/admin/cards/cardconfig/{config.pk}/change/",
        "/admin/cards/cardconfig/add/",
        "/admin/cards/cardtemplate/",
        f"/admin/cards/cardtemplate/{template.pk}/change/",
        "/admin/cards/card/",
        "/admin/cards/card/?status=active&message=yes",
        f"/admin/cards/card/{sams_card.pk}/change/",
    ):
        assert client.get(url).status_code == 200, url
    preview = client.get(f"/admin/cards/cardtemplate/{template.pk}/preview.png")
    assert preview.status_code == 200 and preview.content.startswith(b"\x89PNG")
    image = client.get(f"/admin/cards/card/{sams_card.pk}/image.png")
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")


def test_analyst_sees_cards_but_cannot_hide_them(client, analyst, sams_card):
    client.force_login(analyst)
    assert client.get("/admin/cards/card/").status_code == 200
    client.post("/admin/cards/card/", {"action": "hide", "_selected_action": [sams_card.pk]})
    sams_card.refresh_from_db()
    assert sams_card.status == Card.Status.ACTIVE


def test_hide_and_restore_actions(client, ops, sams_card):
    client.force_login(ops)
    answer = client.post(
        "/admin/cards/card/", {"action": "hide", "_selected_action": [sams_card.pk]}, follow=True
    )
    assert "Hid 1 card(s)." in answer.content.decode()
    sams_card.refresh_from_db()
    assert sams_card.status == Card.Status.HIDDEN and sams_card.hidden_by.username == "olga"
    client.post("/admin/cards/card/", {"action": "restore", "_selected_action": [sams_card.pk]})
    sams_card.refresh_from_db()
    assert sams_card.status == Card.Status.ACTIVE and sams_card.hidden_by is None


def test_saving_settings_in_the_admin_refreshes_the_rules_text(client, ops, card_campaign):
    client.force_login(ops)
    config = card_campaign.card_config
    answer = client.post(
        f"/admin/cards/cardconfig/{config.pk}/change/",
        {
            "campaign": card_campaign.pk,
            "share_title": "A card from {nickname}",
            "message_max_length": 30,
            "message_max_lines": 2,
            "blocked_words": "",
            "cards_per_day": 10,
        },
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    card_campaign.refresh_from_db()
    assert "greeting of up to 30 characters" in card_campaign.reward_rules_text


def test_card_changelist_query_count_does_not_grow_with_cards(
    client, ops, card_campaign, make_participant, django_assert_max_num_queries
):
    template = card_campaign.card_templates.get()
    for i in range(15):
        p = make_participant()
        campaign_join(campaign=card_campaign, participant=p)
        card_make(campaign=card_campaign, sharer=p, template_id=template.pk, message=f"Hi {i}")
    client.force_login(ops)
    with django_assert_max_num_queries(14):
        assert client.get("/admin/cards/card/").status_code == 200
