"""Distribution's compliance checks and its part of the public rules text.

The level rules (level 1 on, level 2 only behind the campaign's flag with a warning, three or
more refused) are the reward-rule checks of referrals.services.compliance, reused here; this
module adds what only a distribution plan can get wrong.
"""

from campaigns.models import Campaign
from referrals.models import RewardRule
from referrals.services import compliance

R = RewardRule


def plan_refusals(campaign: Campaign, plan=None, *, with_levels: bool = False) -> list[str]:
    """Blocking findings about the distribution configuration of `campaign` (a plan being
    edited may be passed before it is saved); `with_levels` adds the reused level checks of
    the campaign's rules (for the plan form)."""
    from .models import DistributionPlan

    if plan is None:
        plan = DistributionPlan.objects.filter(campaign=campaign).first()
    refusals = []
    if plan is None:
        if (
            campaign.kind == Campaign.Kind.DISTRIBUTION
            and campaign.reward_rules.filter(is_active=True, trigger=R.Trigger.ORDER_PAID).exists()
        ):
            refusals.append(
                "[distribution_plan_needed] A distribution campaign with commission rules needs a "
                "distribution plan (protection and expiry of customer bindings)."
            )
        return refusals
    if campaign.kind != Campaign.Kind.DISTRIBUTION:
        refusals.append("[distribution_kind] A distribution plan works only in a distribution campaign.")
    if plan.protection_days > plan.expiry_days:
        refusals.append(
            "[distribution_protection_within_expiry] The protection period cannot be longer than the binding."
        )
    for rule in campaign.reward_rules.filter(is_active=True):
        if rule.trigger == R.Trigger.MILESTONE:
            refusals.append(
                f"“{rule}”: [distribution_no_headcount] A distribution campaign pays commissions on real "
                "orders only, never for the number of people recruited."
            )
        if with_levels:  # at launch the reward-rule checks already say these
            refusals += [
                f"“{rule}”: {finding}"
                for finding in compliance.rule_findings(rule, campaign)
                if finding.code in ("at_most_two_levels", "level2_needs_flag", "no_headcount_pay")
            ]
    return refusals


def plan_warnings(campaign: Campaign) -> list[str]:
    """Shown to ops, not blocking: the level-2 warning of the reused rule checks."""
    return [
        f"“{rule}”: {finding}"
        for rule in campaign.reward_rules.filter(is_active=True, level=2)
        for finding in compliance.rule_findings(rule, campaign)
        if not finding.blocking
    ]


def launch_check(campaign: Campaign) -> list[str]:
    """Registered in campaigns.services.LAUNCH_CHECKS."""
    if campaign.kind != Campaign.Kind.DISTRIBUTION and not hasattr(campaign, "distribution_plan"):
        return []
    return plan_refusals(campaign)


def rules_text_part(campaign: Campaign) -> list[str]:
    """Registered in referrals.services.compliance.RULES_TEXT_PARTS."""
    from .models import DistributionPlan

    plan = DistributionPlan.objects.filter(campaign=campaign).first()
    if plan is None:
        return []
    who = (
        "Anyone who joins may become a distributor"
        if plan.admission == DistributionPlan.Admission.ANYONE
        else "Distributors are approved by the organiser"
    )
    lines = [
        f"{who}; becoming one is free and nothing is paid for recruiting people.",
        "A customer who opens a distributor's link is bound to that distributor. For "
        f"{plan.protection_days} days no other distributor's link can take the customer over; after "
        f"{plan.expiry_days} days the binding ends, and orders after that earn it nothing.",
        "Commissions are paid only on real paid orders of bound customers; a refunded order's "
        "commission is cancelled or taken back.",
    ]
    levels = (
        "two levels (the distributor and whoever recruited them)" if campaign.level2_enabled else "one level"
    )
    lines.append(f"Commissions go to {levels}, never more.")
    return lines
