"""Card services: message safety, the daily limit under concurrency, and concurrent accepts."""

import threading

import pytest
from django.db import connection

from campaigns.models import Campaign
from config.errors import ApplicationError
from mechanics.cards import services
from mechanics.cards.models import Card, CardConfig, CardReceipt
from mechanics.cards.render import wrap
from referrals.models import Event, Referral
from referrals.services.attribution import campaign_join


def config_of(campaign) -> CardConfig:
    return CardConfig.objects.select_related("campaign").get(campaign=campaign)


def test_message_is_cleaned_of_control_and_invisible_characters(card_campaign):
    # a bidi override, a zero-width space, a NUL, a bell, tabs and a CRLF
    raw = "  Happy\u202e  New\u200b Year\x00\x07\t!\r\n\r\n  Best   wishes  "
    assert services.message_clean(raw, config=config_of(card_campaign)) == "Happy New Year !\nBest wishes"


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("x" * 41, "message_too_long"),
        ("a\nb\nc\nd", "message_too_many_lines"),
        ("see https://evil.example", "message_has_contact"),
        ("visit www.spam.cn", "message_has_contact"),
        ("call 138-0013-8000", "message_has_contact"),
        ("this has a BadWord in it", "message_blocked"),
        ("一起来赌博", "message_blocked"),
        ("Free cash for all", "message_blocked"),
    ],
)
def test_bad_messages_are_refused_and_nothing_is_made(card_campaign, sharer, message, code):
    campaign_join(campaign=card_campaign, participant=sharer)
    with pytest.raises(ApplicationError) as refused:
        services.card_make(
            campaign=card_campaign,
            sharer=sharer,
            template_id=card_campaign.card_templates.get().pk,
            message=message,
        )
    assert refused.value.code == code and refused.value.status_code == 400
    assert not Card.objects.exists()
    assert not Event.objects.filter(name="card_made").exists()


def test_a_message_at_the_limit_after_cleaning_is_taken(card_campaign, sharer):
    campaign_join(campaign=card_campaign, participant=sharer)
    message = "新" * 40 + "\u200b" * 10  # 40 characters once the invisible ones are gone
    card, created = services.card_make(
        campaign=card_campaign,
        sharer=sharer,
        template_id=card_campaign.card_templates.get().pk,
        message=message,
    )
    assert created and card.message == "新" * 40


def test_empty_greeting_uses_the_templates_caption(card_campaign, sharer):
    from mechanics.cards.render import card_png

    template = card_campaign.card_templates.get()
    template.caption = "Happy New Year"
    template.save()
    campaign_join(campaign=card_campaign, participant=sharer)
    card, _ = services.card_make(campaign=card_campaign, sharer=sharer, template_id=template.pk, message="")
    assert card.message == ""
    png, _ = card_png(card, max_lines=3)
    assert png.startswith(b"\x89PNG")


def test_wrap_breaks_words_and_chinese_and_ends_with_an_ellipsis():
    from PIL import ImageFont

    font = ImageFont.load_default(size=20)
    lines = wrap("Happy New Year to you and your whole family", font=font, width=120, max_lines=2)
    assert len(lines) == 2 and lines[-1].endswith("…")
    assert all(font.getlength(line) <= 120 for line in lines)
    assert wrap("新年快乐" * 10, font=font, width=60, max_lines=9)[0] != "新年快乐" * 10


def test_daily_limit_is_refused_with_429(card_campaign, sharer):
    campaign_join(campaign=card_campaign, participant=sharer)
    template = card_campaign.card_templates.get()
    for i in range(5):
        services.card_make(
            campaign=card_campaign, sharer=sharer, template_id=template.pk, message=f"card {i}"
        )
    with pytest.raises(ApplicationError) as refused:
        services.card_make(campaign=card_campaign, sharer=sharer, template_id=template.pk, message="one more")
    assert refused.value.code == "card_daily_limit" and refused.value.status_code == 429
    # a retry of a card already made is still answered
    _card, created = services.card_make(
        campaign=card_campaign, sharer=sharer, template_id=template.pk, message="card 0"
    )
    assert not created
    assert Card.objects.count() == 5


def run_together(target, args_list):
    barrier = threading.Barrier(len(args_list))
    results, errors = [], []

    def run(*args):
        try:
            barrier.wait()
            results.append(target(*args))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=args) for args in args_list]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_makes_never_pass_the_daily_limit(make_campaign, make_card_template, make_participant):
    campaign = make_campaign(
        kind=Campaign.Kind.GREETING_CARD, status=Campaign.Status.LIVE, valid_event_name="paid"
    )
    CardConfig.objects.create(campaign=campaign, share_title="Cards", cards_per_day=3)
    template = make_card_template(campaign)
    sharer = make_participant()
    campaign_join(campaign=campaign, participant=sharer)

    def make(i):
        return services.card_make(
            campaign=campaign, sharer=sharer, template_id=template.pk, message=f"card {i}"
        )

    results, errors = run_together(make, [(i,) for i in range(8)])
    assert len(results) == 3
    assert {e.code for e in errors} == {"card_daily_limit"}
    assert Card.objects.filter(sharer=sharer).count() == 3
    assert Event.objects.filter(name="card_made", participant_id=sharer.pk).count() == 3


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_accepts_of_one_card_count_once(make_campaign, make_card_template, make_participant):
    campaign = make_campaign(
        kind=Campaign.Kind.GREETING_CARD, status=Campaign.Status.LIVE, valid_event_name="paid"
    )
    CardConfig.objects.create(campaign=campaign, share_title="Cards")
    template = make_card_template(campaign)
    sharer, receiver = make_participant(), make_participant()
    campaign_join(campaign=campaign, participant=sharer)
    card, _ = services.card_make(campaign=campaign, sharer=sharer, template_id=template.pk, message="Hi")

    results, errors = run_together(
        lambda: services.card_accept(code=card.code, receiver=receiver), [() for _ in range(6)]
    )
    assert errors == []
    assert sum(r["first"] for r in results) == 1
    assert sum(r["joined"] for r in results) == 1
    card.refresh_from_db()
    assert (card.opens, card.accepts) == (1, 1)
    assert CardReceipt.objects.filter(card=card).count() == 1
    assert Referral.objects.get(campaign=campaign, invitee=receiver).inviter_id == sharer.pk
    assert Event.objects.filter(name="card_accepted", participant_id=receiver.pk).count() == 1


def test_a_receivers_valid_action_rewards_the_sender(card_campaign, sharer, invitee):
    """The card mechanic pays nothing itself: the campaign's reward rule on the friend's valid
    action does, through the one ledger."""
    from decimal import Decimal

    from referrals.models import Reward, RewardRule
    from referrals.services.attribution import referral_mark_valid
    from referrals.services.reward_triggers import rewards_for_referral

    RewardRule.objects.create(
        campaign=card_campaign, name="¥2 a valid friend", trigger="invitee_valid", amount=Decimal("2.00")
    )
    campaign_join(campaign=card_campaign, participant=sharer)
    card, _ = services.card_make(
        campaign=card_campaign, sharer=sharer, template_id=card_campaign.card_templates.get().pk, message="Hi"
    )
    result = services.card_accept(code=card.code, receiver=invitee)
    rewards_for_referral(referral_id=result["referral"].pk, trigger="invitee_joined")
    assert not Reward.objects.exists()  # a join alone earns nothing
    from django.utils import timezone

    referral_mark_valid(
        campaign=card_campaign,
        participant_id=invitee.pk,
        event_name="resume_completed",
        occurred_at=timezone.now(),
    )
    rewards_for_referral(referral_id=result["referral"].pk, trigger="invitee_valid")
    reward = Reward.objects.get()
    assert reward.beneficiary_id == sharer.pk and reward.amount == Decimal("2.00")


def test_making_a_card_makes_the_maker_valid_when_card_made_is_the_valid_event(
    make_campaign, make_card_template, sharer, invitee, django_capture_on_commit_callbacks
):
    """The Spring Festival playbook: a friend who received a card counts for the sender once
    they make their own card; the ledger then pays the sender's invitee-valid rule."""
    from decimal import Decimal

    from referrals.models import Reward, RewardRule
    from referrals.services.reward_triggers import rewards_for_referral

    campaign = make_campaign(
        kind=Campaign.Kind.GREETING_CARD, status=Campaign.Status.LIVE, valid_event_name="card_made"
    )
    template = make_card_template(campaign)
    RewardRule.objects.create(campaign=campaign, name="¥1", trigger="invitee_valid", amount=Decimal("1.00"))
    campaign_join(campaign=campaign, participant=sharer)
    card, _ = services.card_make(campaign=campaign, sharer=sharer, template_id=template.pk, message="Hi")
    services.card_accept(code=card.code, receiver=invitee)
    edge = Referral.objects.get(campaign=campaign, invitee=invitee)
    assert edge.status == "joined"  # accepting alone does not count
    with django_capture_on_commit_callbacks() as callbacks:
        services.card_make(campaign=campaign, sharer=invitee, template_id=template.pk, message="Mine")
    edge.refresh_from_db()
    assert edge.status == "valid" and edge.valid_event == "card_made"
    assert len(callbacks) == 1  # the grant task for the new valid invitee
    rewards_for_referral(referral_id=edge.pk, trigger="invitee_valid")
    assert Reward.objects.get().beneficiary_id == sharer.pk
