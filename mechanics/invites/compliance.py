"""What keeps an invite task within WeChat's rules (../shared/RULES.md), and its public rules.

- Only the friend's own deep action counts: the campaign's valid-user event may be neither
  the bare join (or sign-up) nor a share. Tiers therefore never reward shares or joins.
- Tiers go up: each needs more valid friends than the one before, no two need the same
  count, and a higher tier never gives less than a lower one of the same kind.
- Every tier is a level-1 milestone rule for the inviter (no downline headcount pay).
"""

from decimal import Decimal

from campaigns.models import Campaign
from referrals.models import RewardRule
from referrals.services.compliance import BARE_JOIN_EVENTS, SHARE_EVENTS

from .models import InviteTask

MAX_TIERS = 10
MAX_TIER_COUNT = 1000
R = RewardRule


def valid_event_problem(campaign: Campaign) -> str:
    event = (campaign.valid_event_name or "").strip().lower()
    if event in BARE_JOIN_EVENTS:
        return (
            f"[invite_needs_valid_action] The valid-user event is “{event}”, the bare join: an invite "
            "task may count only friends who go on to do something (e.g. resume_completed)."
        )
    if event in SHARE_EVENTS or "share" in event:
        return (
            f"[invite_needs_valid_action] The valid-user event “{event}” is a share: WeChat forbids "
            "rewarding sharing."
        )
    return ""


def _value(rule: RewardRule) -> Decimal | None:
    if rule.kind == R.Kind.POINTS:
        return Decimal(rule.points or 0)
    if rule.amount_kind == R.AmountKind.FIXED:
        return rule.amount
    if rule.amount_kind == R.AmountKind.RANDOM:
        return rule.amount_min
    return None


def tier_problems(campaign: Campaign, tiers: list[RewardRule]) -> list[str]:
    """Why these tiers (milestone rules, in order of count) may not run."""
    found = []
    problem = valid_event_problem(campaign)
    if problem:
        found.append(problem)
    if not tiers:
        found.append("[invite_tiers_missing] Give the task at least one tier (N valid friends → a reward).")
    if len(tiers) > MAX_TIERS:
        found.append(f"[invite_too_many_tiers] At most {MAX_TIERS} tiers.")
    counts = [t.milestone for t in tiers]
    if len(set(counts)) != len(counts):
        found.append("[invite_tiers_increasing] Two tiers need the same number of friends.")
    for tier in tiers:
        if not 1 <= (tier.milestone or 0) <= MAX_TIER_COUNT:
            found.append(f"“{tier}”: [invite_tier_count] A tier needs 1 to {MAX_TIER_COUNT} valid friends.")
        if tier.level != 1 or tier.beneficiary != R.Beneficiary.INVITER:
            found.append(f"“{tier}”: [invite_tier_level] A tier rewards the inviter directly (level 1).")
    last: dict[str, tuple[RewardRule, Decimal]] = {}
    for tier in tiers:
        value = _value(tier)
        previous = last.get(tier.kind)
        if value is not None and previous and value < previous[1] and tier.milestone > previous[0].milestone:
            found.append(
                f"“{tier}”: [invite_tiers_increasing] It needs more friends than “{previous[0]}” "
                "but gives less; a higher tier never gives less."
            )
        if value is not None:
            last[tier.kind] = (tier, value)
    return found


def launch_findings(campaign: Campaign) -> list[str]:
    """Launch check (campaigns.services.LAUNCH_CHECKS) of an invite-task campaign."""
    if campaign.kind != Campaign.Kind.INVITE_TASK:
        return []
    from .selectors import tiers_of

    if not InviteTask.objects.filter(campaign=campaign).exists():
        return ["[invite_task_missing] Set up the invite task (title and tiers)."]
    found = tier_problems(campaign, tiers_of(campaign))
    unfit = campaign.reward_rules.filter(is_active=True, trigger=R.Trigger.MILESTONE).exclude(
        beneficiary=R.Beneficiary.INVITER, level=1
    )
    found += [
        f"“{rule}”: [invite_tier_level] A tier rewards the inviter directly (level 1)." for rule in unfit
    ]
    return found


def rules_part(campaign: Campaign) -> list[str]:
    """The task in words, above the reward rules (compliance.RULES_TEXT_PARTS)."""
    if campaign.kind != Campaign.Kind.INVITE_TASK:
        return []
    task = InviteTask.objects.filter(campaign=campaign).first()
    if task is None:
        return []
    from .selectors import friends_word, reward_text, tiers_of

    tiers = tiers_of(campaign)
    lines = [
        f"{task.title}: invite friends; a friend counts once they {campaign.valid_user_rule_text()} "
        "after joining through you. Sharing, opening a link or joining alone never counts.",
    ]
    if tiers:
        steps = "; ".join(f"{friends_word(t.milestone)} → {reward_text(t)}" for t in tiers)
        lines.append(
            f"Tiers: {steps}. Each tier is unlocked once and its reward is added to the ones before it."
        )
    lines.append(f"Friends count until the campaign ends ({campaign.ends_at:%Y-%m-%d %H:%M} UTC).")
    return lines
