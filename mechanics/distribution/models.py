"""Distribution (commission): the plan of a campaign, its distributors, the bindings of
customers to distributors, and the orders those bindings attributed.

The binding, not the invite tree, decides who earns an order's commission in a campaign
with a plan: the permanent Referral edge (one inviter per invitee, first link wins) still
records who brought the customer into the campaign, for attribution, valid users and
fraud; the binding is the commercial relationship, which has a protection period and an
expiry and may pass to another distributor. See docs/mechanics/distribution.md.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from campaigns.models import Campaign
from referrals.models import Participant, ShareLink

MONEY = {"max_digits": 12, "decimal_places": 2}


class DistributionPlan(models.Model):
    class Admission(models.TextChoices):
        ANYONE = "anyone", "Anyone who joins may become a distributor"
        APPROVED = "approved", "Only distributors approved by ops"

    campaign = models.OneToOneField(
        Campaign,
        on_delete=models.CASCADE,
        related_name="distribution_plan",
        limit_choices_to={"kind": Campaign.Kind.DISTRIBUTION},
    )
    admission = models.CharField(
        "who may become a distributor", max_length=8, choices=Admission.choices, default=Admission.ANYONE
    )
    protection_days = models.PositiveSmallIntegerField(
        default=15,
        help_text="Days after binding during which another distributor's link cannot take the customer over.",
    )
    expiry_days = models.PositiveSmallIntegerField(
        default=30,
        help_text="Days after binding at which the binding ends: later orders earn the distributor "
        "nothing, and any distributor's link may bind the customer again.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(expiry_days__gte=1), name="distributionplan_expiry_positive"),
            models.CheckConstraint(
                condition=Q(protection_days__lte=F("expiry_days")),
                name="distributionplan_protection_within_expiry",
            ),
        ]

    def __str__(self) -> str:
        return f"Distribution plan of {self.campaign}"


class Distributor(models.Model):
    """A participant who sells for a campaign. Joining is free: no fee, no headcount."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for approval"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        SUSPENDED = "suspended", "Suspended"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="distributors")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="distributor_roles")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    applied_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-applied_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "participant"], name="distributor_once_per_campaign"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "approved", "rejected", "suspended"]),
                name="distributor_status_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.participant} ({self.get_status_display()}) in {self.campaign}"


class Binding(models.Model):
    """A customer bound to a distributor. At most one active binding per customer and campaign."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        REPLACED = "replaced", "Taken over by another distributor"
        EXPIRED = "expired", "Expired"
        RELEASED = "released", "Released by ops"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="distribution_bindings")
    customer = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="distribution_bindings")
    distributor = models.ForeignKey(
        Participant, on_delete=models.CASCADE, related_name="distribution_customers"
    )
    link = models.ForeignKey(ShareLink, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    bound_at = models.DateTimeField()
    protected_until = models.DateTimeField()
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    replaced_by = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-bound_at", "-id"]
        constraints = [
            # Two links opened at once (or a retried bind) can never leave two live bindings.
            models.UniqueConstraint(
                fields=["campaign", "customer"],
                condition=Q(status="active"),
                name="binding_one_active_per_customer",
            ),
            models.CheckConstraint(condition=~Q(customer=F("distributor")), name="binding_not_self"),
            models.CheckConstraint(
                condition=Q(bound_at__lte=F("protected_until"), protected_until__lte=F("expires_at")),
                name="binding_protection_within_expiry",
            ),
            models.CheckConstraint(
                condition=Q(status="active", ended_at__isnull=True)
                | (~Q(status="active") & Q(ended_at__isnull=False)),
                name="binding_ended_iff_not_active",
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "distributor", "-bound_at"], name="binding_by_distributor"),
            models.Index(
                fields=["expires_at"], condition=Q(status="active"), name="binding_active_by_expiry"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} → {self.distributor_id} ({self.status})"


class DistributionOrder(models.Model):
    """A paid order reported by the business backend, and the binding that attributed it.
    Written once per order when its commission is decided; refunds are the ledger's
    RefundedOrder tombstones (a refunded order's commissions are voided or clawed back)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="distribution_orders")
    order_id = models.CharField(max_length=60)
    customer = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="+")
    distributor = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="distribution_orders")
    level2 = models.ForeignKey(
        Participant, on_delete=models.SET_NULL, null=True, blank=True, related_name="distribution_orders_l2"
    )
    binding = models.ForeignKey(Binding, on_delete=models.SET_NULL, null=True, related_name="orders")
    amount = models.DecimalField(**MONEY)
    paid_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-paid_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "order_id"], name="distributionorder_once"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="distributionorder_amount_positive"),
        ]
        indexes = [
            models.Index(fields=["campaign", "distributor", "-paid_at"], name="distorder_by_distributor"),
        ]

    def __str__(self) -> str:
        return f"Order {self.order_id} ({self.amount})"
