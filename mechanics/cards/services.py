"""Cards: make one, open one, accept one ("make my own"), and hide one.

Attribution, opens and joins go through referrals.services.attribution: a card's link is
the sharer's share link, so the invite tree, rewards and fraud scoring see card joins
exactly like any other join. Nothing here touches the reward ledger.
"""

import hashlib
import re
import secrets
import unicodedata
from datetime import datetime, time

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from campaigns.models import Campaign
from config.errors import ApplicationError, ConflictError
from referrals.models import Participant, Referral
from referrals.services import attribution
from referrals.services.events import event_record

from .compliance import clickbait_in
from .models import CARD_KINDS, Card, CardConfig, CardReceipt, CardTemplate

CODE_BYTES = 12  # 16 URL-safe characters: a mini-program scene (≤ 32) with 96 random bits

# Links and contact details turn a greeting into an advert (or a scam): always refused.
LINK_RE = re.compile(
    r"(https?://|www\.|weixin://|\b[a-z0-9-]{2,}\.(com|cn|net|org|top|xyz|io|me|cc|vip|club|site|link)\b)",
    re.IGNORECASE,
)
PHONE_RE = re.compile(r"\d{7,}")
# Control, format (zero-width, bidi overrides), surrogate, private-use and unassigned code points.
STRIPPED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}
WHITESPACE_AS_SPACE = str.maketrans({"\t": " ", "\v": " ", "\f": " ", "\u2028": "\n", "\u2029": "\n"})


def card_config_for(campaign: Campaign) -> CardConfig:
    if campaign.kind not in CARD_KINDS:
        raise ApplicationError(
            "not_a_card_campaign", f"“{campaign}” is not a greeting-card campaign.", status=404
        )
    try:
        return campaign.card_config  # cached when the caller loaded it with the campaign
    except CardConfig.DoesNotExist:
        return default_config(campaign)


def default_config(campaign: Campaign) -> CardConfig:
    """The settings of a card campaign ops have not configured: the model's defaults, the
    campaign's name as the share title. Not saved."""
    return CardConfig(campaign=campaign, share_title=campaign.name[:60])


def card_templates_ensure(*, campaign: Campaign) -> int:
    """A card campaign with poster templates but no card template yet gets one card template
    per poster template (same background and layout, the message box between the nickname
    and the QR code), so a campaign set up with posters works as a card campaign at once.
    Idempotent; locks the campaign row so two first requests make one set. Returns how many
    were made."""
    if CardTemplate.objects.filter(campaign=campaign).exists():
        return 0
    with transaction.atomic():
        Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
        if CardTemplate.objects.filter(campaign=campaign).exists():
            return 0
        made = 0
        for n, poster in enumerate(campaign.templates.all()):
            if not poster.width or not poster.height:
                continue
            top = max(poster.avatar_y + poster.avatar_size, poster.nickname_y + 2 * poster.nickname_size) + 30
            size = max(16, min(44, poster.width // 16))
            margin = min(poster.avatar_x, poster.width // 10)
            template = CardTemplate(
                campaign=campaign,
                name=poster.name,
                position=n,
                background=poster.background.name,
                **{f: getattr(poster, f) for f in LAYOUT_FROM_POSTER},
                message_x=margin,
                message_y=min(top, max(0, poster.height - size)),
                message_width=max(40, poster.width - 2 * margin),
                message_size=size,
                message_color=poster.nickname_color,
            )
            template.save()
            made += 1
    return made


LAYOUT_FROM_POSTER = (
    "avatar_x",
    "avatar_y",
    "avatar_size",
    "nickname_x",
    "nickname_y",
    "nickname_size",
    "nickname_color",
    "qr_x",
    "qr_y",
    "qr_size",
)


def message_clean(raw: str, *, config: CardConfig) -> str:
    """The sharer's message made safe to print on a card, or a 400 saying what is wrong.

    Normalised (NFC), control and invisible characters removed (a bidi override could make
    a message read differently from what moderators see), spaces collapsed, lines trimmed;
    then checked for length, lines, links, phone numbers, clickbait and blocked words."""
    raw = raw or ""
    text = raw.replace("\r\n", "\n").replace("\r", "\n").translate(WHITESPACE_AS_SPACE)
    text = unicodedata.normalize("NFC", text)
    text = "".join(c for c in text if c == "\n" or unicodedata.category(c) not in STRIPPED_CATEGORIES)
    lines = [" ".join(line.split()) for line in text.split("\n")]
    text = "\n".join(line for line in lines if line).strip()
    if not config.personal_message:
        if text:
            raise ApplicationError(
                "message_not_allowed",
                "Image-share cards carry a fixed caption; send no message.",
                fields={"message": ["Leave empty."]},
            )
        return ""
    limit = config.message_max_length
    if len(text) > limit:
        raise ApplicationError(
            "message_too_long",
            f"A message may be at most {limit} characters; this one has {len(text)}.",
            fields={"message": [f"At most {limit} characters."]},
        )
    if text.count("\n") + 1 > config.message_max_lines:
        raise ApplicationError(
            "message_too_many_lines",
            f"A message may have at most {config.message_max_lines} lines.",
            fields={"message": [f"At most {config.message_max_lines} lines."]},
        )
    if LINK_RE.search(text) or PHONE_RE.search(re.sub(r"[\s\-]", "", text)):
        raise ApplicationError(
            "message_has_contact",
            "Links and phone numbers cannot go on a card.",
            fields={"message": ["Remove links and phone numbers."]},
        )
    folded = text.casefold()
    blocked = clickbait_in(text) or next((w for w in config.blocked_word_list() if w in folded), "")
    if blocked:
        raise ApplicationError(
            "message_blocked",
            "This message contains words that cannot go on a card.",
            fields={"message": ["Please rephrase."]},
        )
    return text


def _digest(message: str) -> str:
    return hashlib.sha256(message.encode()).hexdigest()


def _day_start(campaign: Campaign, now: datetime) -> datetime:
    local = timezone.localtime(now, campaign.tz)
    return datetime.combine(local.date(), time.min, tzinfo=campaign.tz)


def card_make(
    *,
    campaign: Campaign,
    sharer: Participant,
    template_id: int,
    message: str = "",
    channel_code: str = "",
    now: datetime | None = None,
) -> tuple[Card, bool]:
    """The sharer's card with this template and message. Idempotent: the same template and
    message give back the same card (and do not count against the daily limit).

    The sharer must have joined the campaign (409 join_first), like for any share link.
    Locks the sharer's membership row, so concurrent makes cannot pass the daily limit."""
    config = card_config_for(campaign)
    now = now or timezone.now()
    card_templates_ensure(campaign=campaign)
    template = CardTemplate.objects.filter(pk=template_id, campaign=campaign, is_active=True).first()
    if template is None:
        raise ApplicationError(
            "template_unknown",
            "This campaign offers no such card template.",
            fields={"template": ["Pick one of the campaign's card templates."]},
        )
    text = message_clean(message, config=config)
    digest = _digest(text)
    # Link first: it refuses a campaign that is not live and a sharer who has not joined.
    link, _ = attribution.share_link_get_or_create(
        campaign=campaign, sharer=sharer, channel_code=channel_code
    )
    with transaction.atomic():
        Referral.objects.select_for_update().filter(campaign=campaign, invitee=sharer).first()
        existing = Card.objects.filter(
            campaign=campaign, sharer=sharer, template=template, message_digest=digest
        ).first()
        if existing is not None:
            return existing, False
        made_today = Card.objects.filter(
            campaign=campaign, sharer=sharer, created_at__gte=_day_start(campaign, now)
        ).count()
        if made_today >= config.cards_per_day:
            raise ApplicationError(
                "card_daily_limit",
                f"You can make {config.cards_per_day} cards a day; come back tomorrow.",
                status=429,
            )
        try:
            with transaction.atomic():
                card = Card.objects.create(
                    code=secrets.token_urlsafe(CODE_BYTES),
                    campaign=campaign,
                    sharer=sharer,
                    template=template,
                    link=link,
                    message=text,
                    message_digest=digest,
                )
        except IntegrityError:
            return Card.objects.get(
                campaign=campaign, sharer=sharer, template=template, message_digest=digest
            ), False
        event_record(
            participant_id=sharer.pk,
            campaign_id=campaign.pk,
            name="card_made",
            client_event_id=f"#card:{card.pk}:made",
            occurred_at=now,
            channel_id=link.channel_id,
            properties={"card": card.code, "template": template.pk, "has_message": bool(text)},
        )
        if campaign.event_makes_valid(event_name="card_made", properties={}):
            # The Spring Festival playbook: a friend counts once they make their own card.
            attribution.referral_mark_valid(
                campaign=campaign, participant_id=sharer.pk, event_name="card_made", occurred_at=now
            )
    return card, True


def card_for_receiver(code: str) -> Card:
    """A card anyone holding its code may see: 404 if unknown, 410 once ops hid it."""
    card = (
        Card.objects.select_related("campaign", "campaign__card_config", "sharer", "template", "link")
        .filter(code=code)
        .exclude(campaign__status__in=[Campaign.Status.DRAFT, Campaign.Status.ARCHIVED])
        .first()
    )
    if card is None:
        raise ApplicationError("card_not_found", "No card has this code.", status=404)
    if card.status == Card.Status.HIDDEN:
        raise ApplicationError("card_hidden", "This card was taken down.", status=410)
    return card


def _receipt(card: Card, receiver: Participant, now: datetime) -> tuple[CardReceipt, bool]:
    receipt, created = CardReceipt.objects.get_or_create(
        card=card, receiver=receiver, defaults={"opened_at": now}
    )
    if created:
        Card.objects.filter(pk=card.pk).update(opens=F("opens") + 1)
        event_record(
            participant_id=receiver.pk,
            campaign_id=card.campaign_id,
            name="card_opened",
            client_event_id=f"#card:{card.pk}:opened",
            occurred_at=now,
            inviter_id=card.sharer_id,
            channel_id=card.link.channel_id,
            properties={"card": card.code},
        )
    return receipt, created


def card_open(
    *,
    code: str,
    receiver: Participant,
    client_event_id: str,
    ip: str | None = None,
    device_id: str = "",
    user_agent: str = "",
    now: datetime | None = None,
) -> tuple[Card, bool]:
    """`receiver` opened the card: a share-link open (the attribution evidence, idempotent by
    client_event_id) and, the first time for this receiver, a card_opened event. The sharer
    looking at their own card records nothing. Returns (card, first open by this receiver)."""
    card = card_for_receiver(code)
    if receiver.pk == card.sharer_id:
        return card, False
    now = now or timezone.now()
    with transaction.atomic():
        attribution.share_link_open(
            code=card.link.code,
            opener=receiver,
            client_event_id=client_event_id,
            ip=ip,
            device_id=device_id,
            user_agent=user_agent,
        )
        _, created = _receipt(card, receiver, now)
    return card, created


def card_accept(
    *,
    code: str,
    receiver: Participant,
    ip: str | None = None,
    device_id: str = "",
    now: datetime | None = None,
) -> dict:
    """The receiver taps “make my own”: they join the campaign with the sender's share code
    (attributed to the sender if the join may be, see attribution.campaign_join), and may
    then make their own card. Idempotent: a second tap changes nothing and says so."""
    card = card_for_receiver(code)
    if receiver.pk == card.sharer_id:
        raise ConflictError("own_card", "This is your own card; make a new one instead.")
    now = now or timezone.now()
    joined = attribution.campaign_join(
        campaign=card.campaign, participant=receiver, code=card.link.code, ip=ip, device_id=device_id, now=now
    )
    referral = joined["referral"]
    # The sender is the receiver's inviter: this join, or an earlier one through the sender.
    attributed = referral.inviter_id == card.sharer_id
    with transaction.atomic():
        receipt, _ = _receipt(card, receiver, now)
        first = CardReceipt.objects.filter(pk=receipt.pk, accepted_at__isnull=True).update(
            accepted_at=now, attributed=attributed
        )
        if first:
            Card.objects.filter(pk=card.pk).update(accepts=F("accepts") + 1)
            event_record(
                participant_id=receiver.pk,
                campaign_id=card.campaign_id,
                name="card_accepted",
                client_event_id=f"#card:{card.pk}:accepted",
                occurred_at=now,
                inviter_id=referral.inviter_id,
                channel_id=referral.channel_id,
                properties={"card": card.code, "attributed": attributed},
            )
    receipt.refresh_from_db()
    return {
        "card": card,
        "referral": referral,
        "joined": joined["created"],
        "attributed": receipt.attributed,
        "first": bool(first),
        "note": joined["note"] or referral.attribution.get("reason", ""),
    }


@transaction.atomic
def card_hide(*, card_id: int, by, reason: str) -> Card:
    """Ops take a card down (its message breaks the rules): receivers get 410, the image is
    no longer served. The join history stays. Idempotent."""
    card = Card.objects.select_for_update().get(pk=card_id)
    if card.status != Card.Status.HIDDEN:
        card.status, card.hidden_reason, card.hidden_by = Card.Status.HIDDEN, reason[:200], by
        card.save(update_fields=["status", "hidden_reason", "hidden_by", "updated_at"])
    return card


@transaction.atomic
def card_restore(*, card_id: int, by) -> Card:
    card = Card.objects.select_for_update().get(pk=card_id)
    if card.status != Card.Status.ACTIVE:
        card.status, card.hidden_reason, card.hidden_by = Card.Status.ACTIVE, "", None
        card.save(update_fields=["status", "hidden_reason", "hidden_by", "updated_at"])
    return card


def share_title_for(card: Card) -> str:
    config = CardConfig.objects.filter(campaign_id=card.campaign_id).first()
    title = config.share_title if config else card.campaign.name
    return title.replace("{nickname}", card.sharer.display_name)[:60]
