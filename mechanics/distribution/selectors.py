"""Reads for distributors: my customers, my orders, my commissions (always the caller's own)."""

from decimal import Decimal

from django.db.models import Case, CharField, Count, Exists, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from campaigns.models import Campaign
from referrals.models import Participant, RefundedOrder, Reward, RewardRule

from .models import Binding, DistributionOrder, Distributor

# How a commission looks to its distributor. A paid commission whose order was refunded
# later stays paid in the ledger, with a negative clawback entry: shown as "clawed_back".
COMMISSION_STATES = {
    Reward.Status.PENDING: "held",
    Reward.Status.HELD: "held",
    Reward.Status.APPROVED: "approved",
    Reward.Status.PAID: "paid",
    Reward.Status.VOIDED: "voided",
    Reward.Status.REJECTED: "rejected",
}


def binding_of_customer(*, campaign: Campaign, customer: Participant) -> Binding | None:
    """The customer's binding that earns commissions now (active and not past its expiry)."""
    return (
        Binding.objects.filter(
            campaign=campaign, customer=customer, status=Binding.Status.ACTIVE, expires_at__gt=timezone.now()
        )
        .select_related("distributor")
        .first()
    )


def customers_of(*, campaign: Campaign, distributor: Participant, status: str = ""):
    rows = Binding.objects.filter(campaign=campaign, distributor=distributor).select_related("customer")
    if status:
        rows = rows.filter(status=status)
    return rows.annotate(
        order_count=Count("orders", distinct=True),
    ).order_by("-bound_at", "-id")


def orders_of(*, campaign: Campaign, distributor: Participant):
    """Orders attributed to me as level 1 or level 2, with refunds and my commission."""
    mine = Reward.objects.filter(
        campaign=campaign,
        beneficiary=distributor,
        rule__trigger=RewardRule.Trigger.ORDER_PAID,
        amount__gt=0,
        source=Concat(Value("order:"), OuterRef("order_id")),
    )
    return (
        DistributionOrder.objects.filter(campaign=campaign)
        .filter(Q(distributor=distributor) | Q(level2=distributor))
        .select_related("customer")
        .annotate(
            refunded=Exists(
                RefundedOrder.objects.filter(
                    campaign_id=OuterRef("campaign_id"), order_id=OuterRef("order_id")
                )
            ),
            level=Case(When(distributor=distributor, then=Value(1)), default=Value(2)),
            commission=Subquery(mine.values("source").annotate(total=Sum("amount")).values("total")[:1]),
        )
        .order_by("-paid_at", "-id")
    )


def commissions_of(*, campaign: Campaign, distributor: Participant, state: str = ""):
    """My commission entries (not the clawback rows themselves), each with `state`."""
    clawed = Reward.objects.filter(
        beneficiary_id=OuterRef("beneficiary_id"),
        rule_id=OuterRef("rule_id"),
        source=Concat(Value("clawback:"), Cast(OuterRef("pk"), CharField())),
    )
    rows = (
        Reward.objects.filter(
            campaign=campaign,
            beneficiary=distributor,
            rule__trigger=RewardRule.Trigger.ORDER_PAID,
            amount__gte=0,
            source__startswith="order:",
        )
        .select_related("rule")
        .annotate(clawed_back=Exists(clawed))
        .annotate(
            state=Case(
                When(clawed_back=True, then=Value("clawed_back")),
                *[When(status=status, then=Value(shown)) for status, shown in COMMISSION_STATES.items()],
                default=Value("held"),
                output_field=CharField(),
            )
        )
        .order_by("-created_at", "-id")
    )
    if state:
        rows = rows.filter(state=state)
    return rows


def distributor_summary(*, campaign: Campaign, participant: Participant) -> dict:
    role = Distributor.objects.filter(campaign=campaign, participant=participant).first()
    totals = {state: Decimal("0.00") for state in ("held", "approved", "paid", "clawed_back", "voided")}
    for row in (
        commissions_of(campaign=campaign, distributor=participant)
        .values("state")
        .annotate(total=Sum("amount"))
    ):
        if row["state"] in totals:
            totals[row["state"]] = row["total"]
    bindings = Binding.objects.filter(campaign=campaign, distributor=participant)
    return {
        "campaign": campaign.slug,
        "status": role.status if role else None,
        "applied_at": role.applied_at if role else None,
        "active_customers": bindings.filter(status=Binding.Status.ACTIVE).count(),
        "customers": bindings.values("customer_id").distinct().count(),
        "commissions": totals,
    }
