"""Check-in's compliance checks and its part of the public rules text.

A check-in is never conditioned on sharing, and sharing never earns anything in a check-in
campaign: the plan cannot require it, and no reward rule may hang on a share (the
reward-rule check of referrals.services.compliance says which; reused here). Check-in
rewards are for the participant's own activity, so they go to the participant.
"""

import re

from campaigns.models import Campaign
from referrals.models import RewardRule
from referrals.services import compliance

R = RewardRule
CHECKIN_EVENT = re.compile(r"(checked_in|checkin_streak_\d+)\Z")


def _plan_of(campaign: Campaign):
    from .models import CheckinPlan

    return CheckinPlan.objects.filter(campaign=campaign).first()


def plan_refusals(campaign: Campaign, plan=None) -> list[str]:
    """Blocking findings about the check-in configuration (a plan being edited may be
    passed before it is saved)."""
    plan = plan if plan is not None else _plan_of(campaign)
    if plan is None:
        if campaign.kind == Campaign.Kind.CHECKIN:
            return [
                "[checkin_plan_needed] A check-in campaign needs a check-in plan "
                "(streak tiers, make-up cards)."
            ]
        return []
    refusals = []
    if campaign.kind != Campaign.Kind.CHECKIN:
        refusals.append("[checkin_kind] A check-in plan works only in a check-in campaign.")
    if plan.share_required:
        refusals.append(
            "[checkin_no_share_condition] Checking in may not require sharing: WeChat forbids making "
            "sharing the condition of a feature. Switch off “must share to check in”."
        )
    for rule in campaign.reward_rules.filter(is_active=True):
        if any(f.code == "no_reward_for_sharing" for f in compliance.rule_findings(rule, campaign)):
            refusals.append(
                f"“{rule}”: [checkin_no_reward_for_sharing] In a check-in campaign nothing may reward "
                "sharing or wait for a share; reward the check-ins themselves."
            )
        if (
            rule.trigger == R.Trigger.EVENT
            and CHECKIN_EVENT.match(rule.trigger_event or "")
            and rule.beneficiary != R.Beneficiary.INVITEE
        ):
            refusals.append(
                f"“{rule}”: [checkin_own_activity] Check-in rewards are for the participant's own "
                "check-ins: set the beneficiary to the participant (“invitee”), not their inviter."
            )
    return refusals


def plan_warnings(campaign: Campaign, plan) -> list[str]:
    """Not blocking: tier rules that can never fire, tiers no rule rewards."""
    rules = set(
        campaign.reward_rules.filter(is_active=True, trigger=R.Trigger.EVENT).values_list(
            "trigger_event", flat=True
        )
    )
    tiers = {f"checkin_streak_{d}" for d in plan.tiers}
    warnings = [
        f"No reward rule gives anything for the {name.rsplit('_', 1)[1]}-day tier (event {name})."
        for name in sorted(tiers - rules)
    ]
    warnings += [
        f"A rule rewards {name}, but the plan has no such tier: it never fires."
        for name in sorted(r for r in rules if r.startswith("checkin_streak_") and r not in tiers)
    ]
    return warnings


def launch_check(campaign: Campaign) -> list[str]:
    """Registered in campaigns.services.LAUNCH_CHECKS."""
    if campaign.kind != Campaign.Kind.CHECKIN and not hasattr(campaign, "checkin_plan"):
        return []
    return plan_refusals(campaign)


def rules_text_part(campaign: Campaign) -> list[str]:
    """Registered in referrals.services.compliance.RULES_TEXT_PARTS."""
    plan = _plan_of(campaign)
    if plan is None:
        return []
    lines = [
        f"Check in once a day; a day runs from midnight to midnight ({campaign.time_zone} time). "
        "Checking in never requires sharing or inviting anyone.",
    ]
    if plan.tiers:
        tiers = ", ".join(str(d) for d in plan.tiers)
        lines.append(f"Streak rewards at {tiers} days in a row; each is earned once in this campaign.")
    if plan.makeup_cards:
        lines.append(
            f"A missed day breaks the streak unless you fill it with a make-up card: you have "
            f"{plan.makeup_cards}, each for a day within the last {plan.makeup_window_days} days "
            "(a made-up day counts for streaks, not for the daily reward)."
        )
    else:
        lines.append("A missed day starts the streak again from day 1.")
    return lines
