"""A card campaign's settings and card templates, copied into its clone (registered in
campaigns.services.CLONE_HOOKS). Cards and their receipts are history: never copied."""

from campaigns.models import Campaign
from campaigns.services import clone_file_copy
from referrals.services.compliance import campaign_rules_text_refresh

from .models import CardConfig, CardTemplate

CONFIG_FIELDS = ("share_title", "message_max_length", "message_max_lines", "blocked_words", "cards_per_day")
CONFIG_FIELDS_NOT_COPIED = ("id", "campaign", "created_at", "updated_at")
TEMPLATE_FIELDS = (
    "name",
    "is_active",
    "position",
    "caption",
    "avatar_x",
    "avatar_y",
    "avatar_size",
    "nickname_x",
    "nickname_y",
    "nickname_size",
    "nickname_color",
    "message_x",
    "message_y",
    "message_width",
    "message_size",
    "message_color",
    "qr_x",
    "qr_y",
    "qr_size",
)
# The background is copied as a file of its own; width and height are read from it on save;
# the version (the key of the rendered-card cache) starts afresh at 1.
TEMPLATE_FIELDS_NOT_COPIED = (
    "id",
    "campaign",
    "background",
    "width",
    "height",
    "version",
    "created_at",
    "updated_at",
)


def card_setup_clone(*, source: Campaign, clone: Campaign) -> None:
    """Copy `source`'s card settings and every card template (active or not, each with its
    own copy of the background image) into `clone`, and rewrite the clone's public rules,
    which describe the cards."""
    config = CardConfig.objects.filter(campaign=source).first()
    templates = list(CardTemplate.objects.filter(campaign=source).order_by("id"))
    if config is None and not templates:
        return
    if config is not None:
        CardConfig.objects.create(
            campaign=clone, **{field: getattr(config, field) for field in CONFIG_FIELDS}
        )
    for template in templates:
        copy = CardTemplate(campaign=clone, **{field: getattr(template, field) for field in TEMPLATE_FIELDS})
        clone_file_copy(original=template.background, copy=copy.background)
        copy.save()
    campaign_rules_text_refresh(campaign_id=clone.pk)
