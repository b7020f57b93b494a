"""What keeps a card campaign within WeChat's rules (../shared/RULES.md), and its public rules.

- No clickbait share cards (“free cash every day”): share titles and captions are checked.
- Sharing is never rewarded: a reward rule on making or opening a card is refused (making
  a card is the act of sharing; an open is its outcome, not the friend's own action).
- Making a card is never conditioned on sharing, and receiving one never requires it.
"""

from campaigns.models import Campaign
from referrals.models import RewardRule

from .models import CARD_KINDS, CardConfig

# Phrases WeChat treats as clickbait on share cards (lower case; Chinese and English).
CLICKBAIT = (
    "free cash",
    "free money",
    "every day cash",
    "cash every day",
    "red envelope for everyone",
    "guaranteed prize",
    "click to claim",
    "领现金",
    "免费领",
    "天天领",
    "每天领",
    "红包免费",
    "必得",
    "不转不是",
    "转发领",
    "分享领",
)
# Card events: the sharer's act and its outcome. Rewarding them is induced sharing.
CARD_EVENTS = {"card_made", "card_opened", "card_accepted"}


def clickbait_in(text: str) -> str:
    folded = (text or "").casefold()
    return next((phrase for phrase in CLICKBAIT if phrase in folded), "")


def launch_findings(campaign: Campaign) -> list[str]:
    """Launch check (campaigns.services.LAUNCH_CHECKS): why this card campaign may not go live."""
    found = []
    rules = campaign.reward_rules.filter(is_active=True, trigger=RewardRule.Trigger.EVENT)
    for rule in rules:
        if (rule.trigger_event or "").strip().lower() in CARD_EVENTS:
            found.append(
                f"“{rule}”: [no_reward_for_card_sharing] Making or opening a card is sharing; "
                "WeChat forbids rewarding it. Reward what the friend does after joining."
            )
    if campaign.kind not in CARD_KINDS:
        return found
    config = CardConfig.objects.filter(campaign=campaign).first()
    bait = clickbait_in(config.share_title if config else campaign.name)
    if bait:
        found.append(f"[card_clickbait] The share title contains “{bait}”, clickbait WeChat refuses.")
    templates = list(campaign.card_templates.filter(is_active=True))
    if not templates and not campaign.templates.exists():
        found.append("[card_template_missing] Add at least one active card template.")
    for template in templates:
        bait = clickbait_in(template.caption)
        if bait:
            found.append(f"“{template}”: [card_clickbait] The caption contains “{bait}”.")
        if campaign.kind == Campaign.Kind.IMAGE_SHARE and not template.caption.strip():
            found.append(
                f"“{template}”: [caption_needed] An image-share card shows a fixed caption; write it."
            )
    if campaign.kind == Campaign.Kind.IMAGE_SHARE and not templates:
        found.append(
            "[caption_needed] An image-share campaign needs card templates with their fixed caption."
        )
    return found


def rules_part(campaign: Campaign) -> list[str]:
    """The card mechanic in words, on top of the public rules (compliance.RULES_TEXT_PARTS)."""
    if campaign.kind not in CARD_KINDS:
        return []
    config = CardConfig.objects.filter(campaign=campaign).first() or CardConfig(
        campaign=campaign, share_title=campaign.name[:60]
    )
    if config.personal_message:
        lines = [
            "Pick a card, add a greeting of up to "
            f"{config.message_max_length} characters and send it to friends. Messages with links, "
            "phone numbers or blocked words are refused, and ops may hide a card that breaks the rules.",
        ]
    else:
        lines = ["Pick a picture and send it to friends; each picture carries the same fixed caption."]
    lines += [
        f"You can make up to {config.cards_per_day} cards a day.",
        "A friend who opens your card and taps “make my own” joins through you; "
        "they then make their own card. Opening or sending a card never earns a reward by itself.",
    ]
    return lines
