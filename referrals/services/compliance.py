"""The compliance check of reward rules against WeChat's platform rules (see RULES.md).

Run when a rule is saved (the admin form) and again when a campaign is launched. Each
refusal names the rule it breaks; warnings are shown but do not block.
"""

from dataclasses import dataclass
from decimal import Decimal

from campaigns.models import Campaign
from referrals.models import RewardRule

# Events that are the act of sharing: rewarding them is "induced sharing".
SHARE_EVENTS = {
    "share",
    "shared",
    "share_app_message",
    "share_timeline",
    "forward",
    "invite_sent",
    "share_link",
}
# A "valid" invitee defined as the bare join (or sign-up) is no deep interaction at all.
BARE_JOIN_EVENTS = {"join", "joined", "register", "registered", "signup", "sign_up", "login"}
MECHANIC_OF_TRIGGER = {
    RewardRule.Trigger.GROUP_COMPLETED: Campaign.Kind.GROUP_BUY,
    RewardRule.Trigger.PRICE_CUT_COMPLETED: Campaign.Kind.PRICE_CUT,
}
MIN_CASH = Decimal("0.10")  # WeChat Pay: the smallest transfer
MAX_CASH = Decimal("200.00")  # a cash red packet is ¥1–200

R = RewardRule
ACT_TRIGGERS = {R.Trigger.EVENT, R.Trigger.GROUP_COMPLETED, R.Trigger.PRICE_CUT_COMPLETED}


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    blocking: bool = True

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


def rule_findings(rule: RewardRule, campaign: Campaign | None = None) -> list[Finding]:
    campaign = campaign or rule.campaign
    found: list[Finding] = []
    trigger_event = (rule.trigger_event or "").strip().lower()
    if rule.trigger == R.Trigger.EVENT and (
        not trigger_event or trigger_event in SHARE_EVENTS or "share" in trigger_event
    ):
        found.append(
            Finding(
                "no_reward_for_sharing",
                "WeChat forbids rewarding the act of sharing (“induced "
                "sharing”); reward what the invitee does after joining instead.",
            )
        )
    release_event = (rule.release_event or "").strip().lower()
    if release_event and (release_event in SHARE_EVENTS or "share" in release_event):
        found.append(
            Finding(
                "no_reward_for_sharing",
                "A hold released by sharing makes sharing the condition of the reward; "
                "release on what the invitee does instead.",
            )
        )
    if rule.beneficiary == R.Beneficiary.INVITER and (
        rule.trigger == R.Trigger.INVITEE_JOINED
        or (
            rule.trigger in (R.Trigger.INVITEE_VALID, R.Trigger.MILESTONE)
            and (campaign.valid_event_name or "").strip().lower() in BARE_JOIN_EVENTS
        )
    ):
        found.append(
            Finding(
                "needs_deep_interaction",
                "An inviter may be rewarded only for what the invitee does after joining (the "
                "campaign's valid-user event), not for the join or sign-up itself.",
            )
        )
    mechanic = MECHANIC_OF_TRIGGER.get(rule.trigger)
    if mechanic is not None and campaign.kind != mechanic:
        found.append(
            Finding(
                "trigger_needs_mechanic",
                f"“{rule.get_trigger_display()}” fires only in a {mechanic.label.lower()} campaign.",
            )
        )
    if rule.level >= 3:
        found.append(
            Finding(
                "at_most_two_levels",
                "Commissions on three or more levels are a pyramid scheme; WeChat and the law refuse them.",
            )
        )
    elif rule.level == 2:
        if campaign.kind != Campaign.Kind.DISTRIBUTION or not campaign.level2_enabled:
            found.append(
                Finding(
                    "level2_needs_flag",
                    "Level-2 rewards need a distribution campaign with "
                    "“allow level-2 commissions” switched on.",
                )
            )
        else:
            found.append(
                Finding(
                    "level2_warning",
                    "Level-2 commissions are allowed only on real orders; "
                    "WeChat penalises multi-level schemes.",
                    blocking=False,
                )
            )
    if rule.level >= 2 and rule.trigger != R.Trigger.ORDER_PAID:
        found.append(
            Finding(
                "no_headcount_pay",
                "Rewards for a downline's headcount are forbidden; "
                "beyond level 1, pay only a commission on real paid orders.",
            )
        )
    if rule.beneficiary == R.Beneficiary.INVITEE and rule.level != 1:
        found.append(Finding("invitee_level", "An invitee reward has no levels; set level 1."))
    if rule.trigger == R.Trigger.MILESTONE and not rule.milestone:
        found.append(Finding("milestone_needs_count", "Say how many valid invitees the milestone needs."))
    if rule.kind == R.Kind.POINTS:
        if not rule.points:
            found.append(Finding("points_needed", "Say how many points the reward gives."))
        return found
    if rule.amount_kind == R.AmountKind.FIXED:
        if rule.amount is None or rule.amount <= 0:
            found.append(Finding("amount_needed", "Give the fixed amount."))
        elif rule.kind == R.Kind.CASH and not MIN_CASH <= rule.amount <= MAX_CASH:
            found.append(
                Finding("cash_bounds", f"A cash reward must be between ¥{MIN_CASH} and ¥{MAX_CASH}.")
            )
    elif rule.amount_kind == R.AmountKind.RANDOM:
        if rule.amount_min is None or rule.amount_max is None or not 0 < rule.amount_min <= rule.amount_max:
            found.append(
                Finding(
                    "random_needs_bounds", "A random amount must publish its bounds: from > 0 and to ≥ from."
                )
            )
        elif rule.kind == R.Kind.CASH and (rule.amount_min < MIN_CASH or rule.amount_max > MAX_CASH):
            found.append(
                Finding("cash_bounds", f"A cash reward must be between ¥{MIN_CASH} and ¥{MAX_CASH}.")
            )
    elif rule.amount_kind == R.AmountKind.PERCENT:
        if rule.trigger != R.Trigger.ORDER_PAID:
            found.append(
                Finding(
                    "percent_needs_orders", "A percentage is a commission: it needs the “order paid” trigger."
                )
            )
        if (
            rule.percent is None
            or not 0 < rule.percent <= 100
            or rule.amount_cap is None
            or rule.amount_cap <= 0
        ):
            found.append(Finding("percent_needs_cap", "Give the percentage (0–100) and the cap in ¥."))
        elif rule.kind == R.Kind.CASH and rule.amount_cap < MIN_CASH:
            found.append(
                Finding("cash_bounds", f"A cash commission's cap must be at least ¥{MIN_CASH} (WeChat Pay).")
            )
    return found


def campaign_findings(campaign: Campaign) -> list[str]:
    """Blocking findings of a campaign's active rules, as messages naming rule and check.
    Registered as a launch check of campaigns.services."""
    messages = []
    for rule in campaign.reward_rules.filter(is_active=True):
        messages += [f"“{rule}”: {f}" for f in rule_findings(rule, campaign) if f.blocking]
        if rule.kind == R.Kind.COUPON and not rule.coupon_codes.filter(reward__isnull=True).exists():
            messages.append(f"“{rule}”: [coupon_codes_needed] Upload the coupon codes this rule gives out.")
    return messages


def _amount_text(rule: RewardRule) -> str:
    if rule.kind == R.Kind.POINTS:
        return f"{rule.points} points"
    what = "cash" if rule.kind == R.Kind.CASH else "a coupon worth"
    if rule.amount_kind == R.AmountKind.RANDOM:
        return f"a random {what} amount from ¥{rule.amount_min} to ¥{rule.amount_max}"
    if rule.amount_kind == R.AmountKind.PERCENT:
        return f"{rule.percent.normalize()}% of the order, at most ¥{rule.amount_cap}" + (
            f" (nothing under ¥{MIN_CASH})" if rule.kind == R.Kind.CASH else ""
        )
    return f"¥{rule.amount} {what}" if rule.kind == R.Kind.CASH else f"a coupon worth ¥{rule.amount}"


# Mechanic apps (mechanics.*) append `part(campaign) -> list[str]` here in their
# AppConfig.ready(): the mechanic's own configuration in words (group size, floor price...).
RULES_TEXT_PARTS: list = []


def rules_text(campaign: Campaign) -> str:
    """The reward rules in words, for the public rules shown to participants: first what
    the campaign's mechanic does (from its configuration), then each active reward rule."""
    lines = [line for part in RULES_TEXT_PARTS for line in part(campaign)]
    for rule in campaign.reward_rules.filter(is_active=True):
        # An act's own rules (a group, a price cut, an event such as a check-in) pay whoever
        # acted when the beneficiary is the "invitee", and that person's inviter otherwise.
        own_act = rule.trigger in ACT_TRIGGERS and rule.beneficiary == R.Beneficiary.INVITEE
        who = (
            "You get"
            if own_act
            else "The friend you invited gets"
            if rule.beneficiary == R.Beneficiary.INVITEE
            else ("You get" if rule.level == 1 else "You get (as the inviter's inviter)")
        )
        when = {
            R.Trigger.INVITEE_JOINED: "when a friend you invited joins",
            R.Trigger.INVITEE_VALID: f"when a friend you invited counts ({campaign.valid_user_rule_text()})",
            R.Trigger.MILESTONE: f"when {rule.milestone} friends you invited count",
            R.Trigger.GROUP_COMPLETED: "when your group is complete"
            if own_act
            else "when a friend you invited completes a group",
            R.Trigger.PRICE_CUT_COMPLETED: "when your price cut is complete"
            if own_act
            else "when a friend you invited completes a price cut",
            R.Trigger.ORDER_PAID: "when an order you referred is paid (refunded orders are taken back)",
            R.Trigger.EVENT: f"on “{rule.trigger_event}”"
            if own_act
            else f"when a friend you invited sends “{rule.trigger_event}”",
        }[rule.trigger]
        limits = []
        if rule.cap_per_participant:
            limits.append(f"at most {rule.cap_per_participant} times")
        if rule.cap_per_participant_daily:
            limits.append(f"at most {rule.cap_per_participant_daily} a day")
        if rule.kind == R.Kind.CASH and rule.release_event:
            limits.append(f"paid after {rule.release_event}")
        elif rule.kind == R.Kind.CASH and rule.hold_hours:
            limits.append(f"paid after a {rule.hold_hours}-hour review hold")
        suffix = f" ({'; '.join(limits)})" if limits else ""
        lines.append(f"{who} {_amount_text(rule)} {when}{suffix}.")
    lines.append("Sharing by itself never earns a reward.")
    return "\n".join(lines)


def campaign_rules_text_refresh(*, campaign_id: int) -> str:
    """Rewrite the campaign's generated reward-rules text. Idempotent."""
    campaign = Campaign.objects.get(pk=campaign_id)
    has_mechanic = any(part(campaign) for part in RULES_TEXT_PARTS)
    text = (
        rules_text(campaign) if has_mechanic or campaign.reward_rules.filter(is_active=True).exists() else ""
    )
    Campaign.objects.filter(pk=campaign_id).update(reward_rules_text=text)
    return text
