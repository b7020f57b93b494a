"""Greeting cards and image share: the campaign's card settings, card templates, the cards
sharers make and who received each one.

A card is a personalised image plus a link. Behind the link is the sharer's ordinary
share link (referrals.ShareLink): opening a card is a share-link open, and making one's
own card after receiving one is a join attributed to the sender. Nothing here pays a
reward; rewards come from the campaign's reward rules on the invitee's valid action.
"""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from campaigns.models import Campaign, validate_background_size
from referrals.models import Participant, ShareLink

CARD_KINDS = (Campaign.Kind.GREETING_CARD, Campaign.Kind.IMAGE_SHARE)
HEX_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}\Z")
MESSAGE_HARD_LIMIT = 120  # characters: what fits a card legibly, whatever ops configure


class CardConfig(models.Model):
    """How a greeting-card or image-share campaign behaves (one per campaign)."""

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="card_config")
    share_title = models.CharField(
        max_length=60,
        help_text="The title WeChat shows with the shared card, e.g. “A New Year card from {nickname}”. "
        "No clickbait: WeChat refuses “free cash every day” cards.",
    )
    message_max_length = models.PositiveSmallIntegerField(
        "longest message (characters)",
        default=40,
        validators=[MinValueValidator(1), MaxValueValidator(MESSAGE_HARD_LIMIT)],
        help_text=f"Greeting cards only. At most {MESSAGE_HARD_LIMIT}.",
    )
    message_max_lines = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(6)]
    )
    blocked_words = models.TextField(
        blank=True,
        help_text="One word or phrase a line. A message containing any of them is refused "
        "(case-insensitive). Links and phone numbers are always refused.",
    )
    cards_per_day = models.PositiveSmallIntegerField(
        "cards a sharer may make a day",
        default=20,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "card campaign settings"
        verbose_name_plural = "card campaign settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(message_max_length__gte=1, message_max_length__lte=MESSAGE_HARD_LIMIT),
                name="cardconfig_message_length_bounds",
            ),
        ]

    def __str__(self) -> str:
        return f"Cards of {self.campaign}"

    @property
    def personal_message(self) -> bool:
        """Greeting cards carry the sharer's message; image share only the template's caption."""
        return self.campaign.kind == Campaign.Kind.GREETING_CARD

    def blocked_word_list(self) -> list[str]:
        return [w.strip().casefold() for w in self.blocked_words.splitlines() if w.strip()]

    def clean(self) -> None:
        from .compliance import clickbait_in

        errors = {}
        if self.campaign_id and self.campaign.kind not in CARD_KINDS:
            errors["campaign"] = "Card settings belong to a greeting-card or image-share campaign."
        bait = clickbait_in(self.share_title or "")
        if bait:
            errors["share_title"] = f"“{bait}” is clickbait WeChat refuses on share cards."
        if errors:
            raise ValidationError(errors)


class CardTemplate(models.Model):
    """A card background with where the avatar, nickname, message and QR code go (pixels).

    The avatar/nickname/QR fields carry the same names as campaigns.PosterTemplate, so the
    poster renderer composes both."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="card_templates")
    name = models.CharField(max_length=80)
    is_active = models.BooleanField(default=True, help_text="Offered to sharers.")
    position = models.PositiveSmallIntegerField(default=0, help_text="Order in the picker, smallest first.")
    background = models.ImageField(
        upload_to="cards/%Y/%m/",
        validators=[validate_background_size],
        help_text="PNG or JPEG, at most 5 MB. Its size in pixels is the card's size.",
    )
    width = models.PositiveIntegerField(editable=False, default=0)
    height = models.PositiveIntegerField(editable=False, default=0)
    caption = models.CharField(
        max_length=MESSAGE_HARD_LIMIT,
        blank=True,
        help_text="Image share: the fixed text on every card. Greeting cards: the message used "
        "when the sharer writes none.",
    )
    avatar_x = models.PositiveIntegerField(default=40)
    avatar_y = models.PositiveIntegerField(default=40)
    avatar_size = models.PositiveIntegerField(default=120, validators=[MinValueValidator(16)])
    nickname_x = models.PositiveIntegerField(default=180)
    nickname_y = models.PositiveIntegerField(default=80)
    nickname_size = models.PositiveIntegerField(
        "nickname font size", default=36, validators=[MinValueValidator(8)]
    )
    nickname_color = models.CharField(max_length=7, default="#FFFFFF")
    message_x = models.PositiveIntegerField(default=40)
    message_y = models.PositiveIntegerField(default=220)
    message_width = models.PositiveIntegerField(default=500, validators=[MinValueValidator(40)])
    message_size = models.PositiveIntegerField(
        "message font size", default=40, validators=[MinValueValidator(8), MaxValueValidator(200)]
    )
    message_color = models.CharField(max_length=7, default="#FFFFFF")
    qr_x = models.PositiveIntegerField(default=40)
    qr_y = models.PositiveIntegerField(default=600)
    qr_size = models.PositiveIntegerField(default=200, validators=[MinValueValidator(64)])
    # Bumped on every save: rendered cards are cached under it, so an edit invalidates them.
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign_id", "position", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(avatar_size__gte=16), name="cardtemplate_avatar_size_min"),
            models.CheckConstraint(condition=Q(qr_size__gte=64), name="cardtemplate_qr_size_min"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.width, self.height = self._background_size()
        if self.pk:
            self.version = F("version") + 1
        super().save(*args, **kwargs)
        if isinstance(self.version, models.expressions.Combinable):
            self.refresh_from_db(fields=["version"])

    def message_box_height(self, lines: int) -> int:
        return lines * (self.message_size + self.message_size // 4)

    def clean(self) -> None:
        from .compliance import clickbait_in

        errors = {}
        for field in ("nickname_color", "message_color"):
            if not HEX_COLOUR.match(getattr(self, field) or ""):
                errors[field] = "Use a hex colour such as #FFFFFF."
        bait = clickbait_in(self.caption or "")
        if bait:
            errors["caption"] = f"“{bait}” is clickbait WeChat refuses on share cards."
        if self.campaign_id and self.campaign.kind not in CARD_KINDS:
            errors["campaign"] = "Card templates belong to a greeting-card or image-share campaign."
        width, height = self._background_size()
        if width and height:
            for label, x, y, size in (
                ("avatar", self.avatar_x, self.avatar_y, self.avatar_size),
                ("qr", self.qr_x, self.qr_y, self.qr_size),
            ):
                if x + size > width or y + size > height:
                    errors[f"{label}_size"] = (
                        f"The {'QR code' if label == 'qr' else label} at ({x}, {y}) of size {size} does not "
                        f"fit in the {width}×{height} background."
                    )
            if self.nickname_x >= width or self.nickname_y >= height:
                errors["nickname_x"] = f"The nickname starts outside the {width}×{height} background."
            if self.message_x + self.message_width > width:
                errors["message_width"] = (
                    f"The message box ({self.message_x} + {self.message_width} px) is wider than the "
                    f"{width} px background."
                )
            if self.message_y + self.message_size > height:
                errors["message_y"] = f"The message starts below the {height} px background."
        if errors:
            raise ValidationError(errors)

    def _background_size(self) -> tuple[int, int]:
        if not self.background:
            return 0, 0
        try:
            return self.background.width, self.background.height
        except (OSError, ValueError):
            return 0, 0


class Card(models.Model):
    """A card a sharer made: a template, a message, and the sharer's share link behind it.

    Making the same card again (same template and message) returns this row: the unique
    constraint on the message's digest decides under concurrency."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        HIDDEN = "hidden", "Hidden by ops"

    code = models.CharField(max_length=32, unique=True)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="cards")
    sharer = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="cards")
    template = models.ForeignKey(CardTemplate, on_delete=models.PROTECT, related_name="cards")
    link = models.ForeignKey(ShareLink, on_delete=models.CASCADE, related_name="cards")
    message = models.CharField(max_length=MESSAGE_HARD_LIMIT, blank=True)
    message_digest = models.CharField(max_length=64, editable=False)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    hidden_reason = models.CharField(max_length=200, blank=True)
    hidden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    opens = models.PositiveIntegerField(default=0, help_text="Receivers who opened it (each once).")
    accepts = models.PositiveIntegerField(default=0, help_text="Receivers who went on to make their own.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "sharer", "template", "message_digest"], name="card_once_per_message"
            ),
            models.CheckConstraint(condition=Q(opens__gte=F("accepts")), name="card_accepts_not_above_opens"),
        ]
        indexes = [models.Index(fields=["campaign", "sharer", "-created_at"], name="card_by_sharer")]

    def __str__(self) -> str:
        return f"Card {self.code}"

    @property
    def path(self) -> str:
        """The mini-program page a receiver lands on (the card code fits a `scene`)."""
        return f"/pages/card/index?c={self.campaign.slug}&k={self.code}"


class CardReceipt(models.Model):
    """One receiver of one card: when they opened it and when they made their own."""

    card = models.ForeignKey(Card, on_delete=models.CASCADE, related_name="receipts")
    receiver = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="card_receipts")
    opened_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    # True when the receiver's join was attributed to the card's sender (not a self-open,
    # not someone who had joined before through another link).
    attributed = models.BooleanField(default=False)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["card", "receiver"], name="cardreceipt_once_per_receiver"),
        ]

    def __str__(self) -> str:
        return f"{self.receiver_id} received {self.card_id}"
