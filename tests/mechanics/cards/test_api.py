"""The greeting-card flow through the mini program's API, with three participants."""

import io

from PIL import Image

from mechanics.cards.models import Card, CardReceipt
from referrals.models import Event, Referral


def make_card(api, campaign, template_id, message="", **extra):
    return api.post(
        f"/api/v1/campaigns/{campaign.slug}/cards/",
        {"template": template_id, "message": message, **extra},
        format="json",
    )


def test_card_flow_from_sharer_to_receiver_to_receivers_friend(
    card_campaign, sharer, invitee, second_invitee, api_as
):
    sam, ivy, ike = api_as(sharer), api_as(invitee), api_as(second_invitee)
    # given Sam, who joined the Spring Festival campaign
    assert sam.post(f"/api/v1/campaigns/{card_campaign.slug}/join", {}, format="json").status_code == 201
    templates = sam.get(f"/api/v1/campaigns/{card_campaign.slug}/card-templates/").json()
    assert templates["personal_message"] is True and templates["message_max_length"] == 40
    [template] = templates["templates"]
    assert sam.get(template["preview_url"]).status_code == 200

    # when he makes a card with a message
    made = make_card(sam, card_campaign, template["id"], "Happy New Year, Ivy!")
    assert made.status_code == 201, made.json()
    card = made.json()
    assert card["message"] == "Happy New Year, Ivy!"
    assert card["share_title"] == "A New Year card from Sam"
    assert card["path"] == f"/pages/card/index?c=spring-cards&k={card['code']}"
    image = sam.get(card["image_url"])
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size == (400, 700)

    # and Ivy opens it and taps “make my own”
    seen = ivy.get(f"/api/v1/cards/{card['code']}/").json()
    assert seen["sender"] == "Sam" and seen["next"] == "accept" and seen["mine"] is False
    opened = ivy.post(f"/api/v1/cards/{card['code']}/open", {"client_event_id": "o-1"}, format="json")
    assert opened.status_code == 201
    accepted = ivy.post(f"/api/v1/cards/{card['code']}/accept", {}, format="json")
    assert accepted.status_code == 201, accepted.json()
    assert accepted.json()["attributed"] is True and accepted.json()["inviter"] == "Sam"

    # then her join is attributed to Sam through his share link, and she makes her own card
    ivy_edge = Referral.objects.get(campaign=card_campaign, invitee=invitee)
    assert ivy_edge.inviter_id == sharer.pk and ivy_edge.depth == 1
    assert ivy_edge.attribution["rule"] == "open_within_window"
    assert ivy.get(f"/api/v1/cards/{card['code']}/").json()["next"] == "make"
    own = make_card(ivy, card_campaign, template["id"], "新年快乐")
    assert own.status_code == 201

    # and Ike, who receives Ivy's card, joins under Ivy at depth 2
    ike.post(f"/api/v1/cards/{own.json()['code']}/open", {}, format="json")
    assert ike.post(f"/api/v1/cards/{own.json()['code']}/accept", {}, format="json").status_code == 201
    ike_edge = Referral.objects.get(campaign=card_campaign, invitee=second_invitee)
    assert ike_edge.inviter_id == invitee.pk and ike_edge.depth == 2 and ike_edge.root_id == sharer.pk

    sams = Card.objects.get(code=card["code"])
    assert (sams.opens, sams.accepts) == (1, 1)
    names = sorted(Event.objects.filter(campaign_id=card_campaign.pk).values_list("name", flat=True))
    assert names.count("card_made") == 2
    assert names.count("card_opened") == 2 and names.count("card_accepted") == 2
    assert names.count("open") == 2 and names.count("join") == 3
    accepted_event = Event.objects.get(name="card_accepted", participant_id=invitee.pk)
    assert accepted_event.inviter_id == sharer.pk


def test_same_card_twice_is_the_same_card(card_campaign, sharer, api_as):
    sam = api_as(sharer)
    sam.post(f"/api/v1/campaigns/{card_campaign.slug}/join", {}, format="json")
    template = card_campaign.card_templates.get()
    first = make_card(sam, card_campaign, template.pk, "Happy New Year")
    again = make_card(sam, card_campaign, template.pk, "  Happy   New Year ")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["code"] == again.json()["code"]
    assert Card.objects.count() == 1
    assert Event.objects.filter(name="card_made").count() == 1


def test_accept_twice_changes_nothing_the_second_time(card_campaign, sharer, invitee, api_as):
    sam, ivy = api_as(sharer), api_as(invitee)
    sam.post(f"/api/v1/campaigns/{card_campaign.slug}/join", {}, format="json")
    code = make_card(sam, card_campaign, card_campaign.card_templates.get().pk, "Hi").json()["code"]
    first = ivy.post(f"/api/v1/cards/{code}/accept", {}, format="json")
    second = ivy.post(f"/api/v1/cards/{code}/accept", {}, format="json")
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["joined"] is False and second.json()["attributed"] is True
    card = Card.objects.get(code=code)
    assert (card.opens, card.accepts) == (1, 1)
    assert Event.objects.filter(name="card_accepted").count() == 1


def test_receiver_who_joined_through_someone_else_is_not_reattributed(
    card_campaign, sharer, invitee, second_invitee, api_as
):
    sam, ivy, ike = api_as(sharer), api_as(invitee), api_as(second_invitee)
    for client in (sam, ike):
        client.post(f"/api/v1/campaigns/{card_campaign.slug}/join", {}, format="json")
    code = make_card(sam, card_campaign, card_campaign.card_templates.get().pk, "Hi").json()["code"]
    # given Ivy already joined through Ike's link
    ike_code = ike.post(f"/api/v1/campaigns/{card_campaign.slug}/share-links/", {}, format="json").json()[
        "code"
    ]
    ivy.post(f"/api/v1/campaigns/{card_campaign.slug}/join", {"code": ike_code}, format="json")
    # when she accepts Sam's card
    body = ivy.post(f"/api/v1/cards/{code}/accept", {}, format="json").json()
    # then Ike stays her inviter
    assert body["attributed"] is False and body["inviter"] == "Ike"
    assert Referral.objects.get(campaign=card_campaign, invitee=invitee).inviter_id == second_invitee.pk
    assert CardReceipt.objects.get(receiver=invitee).attributed is False


def test_sharer_opening_own_card_records_nothing_and_cannot_accept(card_campaign, sharer, api_as):
    sam = api_as(sharer)
    sam.post(f"/api/v1/campaigns/{card_campaign.slug}/join", {}, format="json")
    code = make_card(sam, card_campaign, card_campaign.card_templates.get().pk, "Hi").json()["code"]
    assert sam.post(f"/api/v1/cards/{code}/open", {}, format="json").json() == {"recorded": False}
    refused = sam.post(f"/api/v1/cards/{code}/accept", {}, format="json")
    assert refused.status_code == 409 and refused.json()["code"] == "own_card"
    assert Card.objects.get(code=code).opens == 0
    assert not Event.objects.filter(name__in=["open", "card_opened"]).exists()


def test_making_a_card_before_joining_is_refused(card_campaign, sharer, api_as):
    answer = make_card(api_as(sharer), card_campaign, card_campaign.card_templates.get().pk, "Hi")
    assert answer.status_code == 409 and answer.json()["code"] == "join_first"
    assert not Card.objects.exists()


def test_unknown_template_and_unknown_card(card_campaign, make_campaign, make_card_template, sharer, api_as):
    sam = api_as(sharer)
    sam.post(f"/api/v1/campaigns/{card_campaign.slug}/join", {}, format="json")
    other = make_campaign(kind="greeting_card", status="live")
    foreign = make_card_template(other)
    answer = make_card(sam, card_campaign, foreign.pk, "Hi")
    assert answer.status_code == 400 and answer.json()["code"] == "template_unknown"
    assert sam.get("/api/v1/cards/NoSuchCard/").json()["code"] == "card_not_found"
    assert sam.post("/api/v1/cards/NoSuchCard/accept", {}, format="json").status_code == 404


def test_card_routes_refuse_a_campaign_of_another_kind(live_campaign, sharer, api_as):
    answer = api_as(sharer).get(f"/api/v1/campaigns/{live_campaign.slug}/card-templates/")
    assert answer.status_code == 404 and answer.json()["code"] == "not_a_card_campaign"


def test_paused_campaign_refuses_new_cards_and_joins(card_campaign, sharer, invitee, api_as):
    sam, ivy = api_as(sharer), api_as(invitee)
    sam.post(f"/api/v1/campaigns/{card_campaign.slug}/join", {}, format="json")
    code = make_card(sam, card_campaign, card_campaign.card_templates.get().pk, "Hi").json()["code"]
    card_campaign.status = "paused"
    card_campaign.save()
    again = make_card(sam, card_campaign, card_campaign.card_templates.get().pk, "Another")
    assert again.status_code == 409 and again.json()["code"] == "campaign_not_live"
    late = ivy.post(f"/api/v1/cards/{code}/accept", {}, format="json")
    assert late.status_code == 409 and late.json()["code"] == "campaign_not_live"
    assert Card.objects.count() == 1 and not Referral.objects.filter(invitee=invitee).exists()
    assert Card.objects.get().accepts == 0


def test_my_cards_lists_only_mine(card_campaign, sharer, invitee, api_as):
    sam, ivy = api_as(sharer), api_as(invitee)
    for client in (sam, ivy):
        client.post(f"/api/v1/campaigns/{card_campaign.slug}/join", {}, format="json")
    make_card(sam, card_campaign, card_campaign.card_templates.get().pk, "Sam's")
    make_card(ivy, card_campaign, card_campaign.card_templates.get().pk, "Ivy's")
    mine = sam.get(f"/api/v1/me/cards/?campaign={card_campaign.slug}").json()
    rows = mine["results"] if isinstance(mine, dict) else mine
    assert [r["message"] for r in rows] == ["Sam's"]


def test_image_is_cached_and_answers_304(card_campaign, sharer, api_as, settings):
    from django.core.cache import cache

    from mechanics.cards import render

    sam = api_as(sharer)
    sam.post(f"/api/v1/campaigns/{card_campaign.slug}/join", {}, format="json")
    body = make_card(sam, card_campaign, card_campaign.card_templates.get().pk, "Hi").json()
    card = Card.objects.select_related("template", "sharer").get(code=body["code"])
    key = render.card_cache_key(card)
    cache.delete(key)
    first = sam.get(body["image_url"])
    assert cache.get(key) == first.content
    assert sam.get(body["image_url"], HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    # an edit of the template makes a new key (and a new image)
    template = card.template
    template.message_color = "#000000"
    template.save()
    card.refresh_from_db()
    card.template.refresh_from_db()
    assert render.card_cache_key(card) != key
    assert sam.get(body["image_url"], HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 200


def test_hidden_card_is_gone_for_receivers(card_campaign, sharer, invitee, api_as):
    from mechanics.cards.services import card_hide

    sam, ivy = api_as(sharer), api_as(invitee)
    sam.post(f"/api/v1/campaigns/{card_campaign.slug}/join", {}, format="json")
    body = make_card(sam, card_campaign, card_campaign.card_templates.get().pk, "Hi").json()
    card_hide(card_id=Card.objects.get().pk, by=None, reason="rude")
    for answer in (
        ivy.get(f"/api/v1/cards/{body['code']}/"),
        ivy.get(body["image_url"]),
        ivy.post(f"/api/v1/cards/{body['code']}/accept", {}, format="json"),
    ):
        assert answer.status_code == 410 and answer.json()["code"] == "card_hidden"
    assert not Referral.objects.filter(invitee=invitee).exists()


def test_image_share_takes_no_message_and_prints_the_caption(image_campaign, sharer, api_as):
    sam = api_as(sharer)
    sam.post(f"/api/v1/campaigns/{image_campaign.slug}/join", {}, format="json")
    listing = sam.get(f"/api/v1/campaigns/{image_campaign.slug}/card-templates/").json()
    assert (
        listing["personal_message"] is False
        and listing["templates"][0]["caption"] == "Happy Lantern Festival"
    )
    template_id = listing["templates"][0]["id"]
    refused = make_card(sam, image_campaign, template_id, "my own words")
    assert refused.status_code == 400 and refused.json()["code"] == "message_not_allowed"
    made = make_card(sam, image_campaign, template_id)
    assert made.status_code == 201 and made.json()["message"] == ""
    assert sam.get(made.json()["image_url"]).status_code == 200


def test_card_routes_are_in_the_api_schema(client, db):
    schema = client.get("/api/schema/").content.decode()
    for route in (
        "/api/v1/campaigns/{slug}/card-templates/",
        "/api/v1/campaigns/{slug}/cards/",
        "/api/v1/cards/{code}/accept",
        "/api/v1/cards/{code}/image.png",
        "/api/v1/me/cards/",
    ):
        assert route in schema, route
    assert "message_too_long" in schema and "card_hidden" in schema
