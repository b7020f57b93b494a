"""A campaign's reward rules, copied into its clone (registered in campaigns.services.CLONE_HOOKS)."""

from campaigns.models import Campaign
from referrals.models import RewardRule

from .compliance import campaign_rules_text_refresh

# What a rule gives, to whom, for what, and within which caps: copied, active or not.
RULE_FIELDS = (
    "name",
    "is_active",
    "trigger",
    "trigger_event",
    "milestone",
    "beneficiary",
    "level",
    "kind",
    "amount_kind",
    "amount",
    "amount_min",
    "amount_max",
    "percent",
    "amount_cap",
    "points",
    "cap_per_participant",
    "cap_per_participant_daily",
    "cap_per_device",
    "hold_hours",
    "release_event",
)
# Not copied: the rule's identity and timestamps. Nor what hangs off it: its coupon codes
# (each one is given out once; upload a new bank), the rewards granted and the cap counters
# they used (RewardCap rows, keyed by the rule's id, so the new rules start at zero).
RULE_FIELDS_NOT_COPIED = ("id", "campaign", "created_at", "updated_at")


def reward_rules_clone(*, source: Campaign, clone: Campaign) -> None:
    """Copy `source`'s reward rules into `clone`, in the same order, and write the clone's
    reward-rules text from them. The mechanics' hooks, which run after this one, rewrite
    the text again once their configuration is copied."""
    RewardRule.objects.bulk_create(
        RewardRule(campaign=clone, **{field: getattr(rule, field) for field in RULE_FIELDS})
        for rule in RewardRule.objects.filter(campaign=source).order_by("id")
    )
    campaign_rules_text_refresh(campaign_id=clone.pk)
