"""Reward rules and the reward ledger."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from campaigns.models import Campaign

from .participant import Participant

MONEY = {"max_digits": 12, "decimal_places": 2}


class RewardRule(models.Model):
    """What a campaign gives, to whom, for what. Checked for compliance when saved and at launch."""

    class Trigger(models.TextChoices):
        INVITEE_JOINED = "invitee_joined", "Invitee joined"
        INVITEE_VALID = "invitee_valid", "Invitee became valid"
        MILESTONE = "milestone", "Milestone: N valid invitees"
        GROUP_COMPLETED = "group_completed", "Group completed"
        PRICE_CUT_COMPLETED = "price_cut_completed", "Price cut completed"
        ORDER_PAID = "order_paid", "Order paid (commission)"
        EVENT = "event", "Another server event"

    class Beneficiary(models.TextChoices):
        INVITER = "inviter", "Inviter"
        INVITEE = "invitee", "Invitee (double-sided)"

    class AmountKind(models.TextChoices):
        FIXED = "fixed", "Fixed"
        RANDOM = "random", "Random within published bounds"
        PERCENT = "percent", "Percent of the order, with a cap"

    class Kind(models.TextChoices):
        CASH = "cash", "Cash (WeChat Pay)"
        COUPON = "coupon", "Coupon code"
        POINTS = "points", "Points"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="reward_rules")
    name = models.CharField(max_length=80)
    is_active = models.BooleanField(default=True)
    trigger = models.CharField(max_length=24, choices=Trigger.choices, default=Trigger.INVITEE_VALID)
    trigger_event = models.CharField(max_length=64, blank=True, help_text="For “Another server event”.")
    milestone = models.PositiveIntegerField(
        null=True, blank=True, help_text="For milestones: valid invitees."
    )
    beneficiary = models.CharField(max_length=8, choices=Beneficiary.choices, default=Beneficiary.INVITER)
    level = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1)],
        help_text="1 = the direct inviter; 2 = the inviter's inviter (distribution, behind a flag).",
    )
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.CASH)
    amount_kind = models.CharField(max_length=8, choices=AmountKind.choices, default=AmountKind.FIXED)
    amount = models.DecimalField("amount (¥)", **MONEY, null=True, blank=True)
    amount_min = models.DecimalField("random from (¥)", **MONEY, null=True, blank=True)
    amount_max = models.DecimalField("random to (¥)", **MONEY, null=True, blank=True)
    percent = models.DecimalField(
        "percent of the order", max_digits=5, decimal_places=2, null=True, blank=True
    )
    amount_cap = models.DecimalField("at most (¥)", **MONEY, null=True, blank=True)
    points = models.PositiveIntegerField(null=True, blank=True)
    cap_per_participant = models.PositiveIntegerField(
        "per participant", null=True, blank=True, help_text="Rewards of this rule one participant may get."
    )
    cap_per_participant_daily = models.PositiveIntegerField("per participant per day", null=True, blank=True)
    cap_per_device = models.PositiveIntegerField("per device", null=True, blank=True)
    hold_hours = models.PositiveIntegerField(default=72, help_text="Hours before a cash reward is payable.")
    release_event = models.CharField(
        max_length=64, blank=True, help_text="Optional: release on this event instead of the timer."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign_id", "trigger", "milestone", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(level__gte=1), name="rewardrule_level_positive"),
            models.CheckConstraint(
                condition=Q(amount__isnull=True) | Q(amount__gte=0), name="rewardrule_amount_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Reward(models.Model):
    """One entry of the ledger. Moves only through services, each move recorded."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        HELD = "held", "Held"
        APPROVED = "approved", "Approved"
        PAID = "paid", "Paid"
        REJECTED = "rejected", "Rejected"
        VOIDED = "voided", "Voided"
        CLAWED_BACK = "clawed_back", "Clawed back"

    rule = models.ForeignKey(RewardRule, on_delete=models.PROTECT, related_name="rewards")
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="rewards")
    beneficiary = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="rewards")
    # What earned it, e.g. "referral:812:invitee_valid" or "milestone:10": with the rule and
    # the beneficiary it is unique, so a retried event or a redelivered task grants once.
    source = models.CharField(max_length=80)
    kind = models.CharField(max_length=8, choices=RewardRule.Kind.choices)
    amount = models.DecimalField(**MONEY, default=Decimal("0.00"))
    points = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    hold_reason = models.CharField(max_length=120, blank=True)
    payable_at = models.DateTimeField(null=True, blank=True)
    device_id = models.CharField(max_length=64, blank=True)
    # The cap counters this grant took, as [key, amount] pairs: given back when the reward
    # is rejected or voided, so a reward that does not stand does not use up a cap.
    cap_keys = models.JSONField(default=list, blank=True, editable=False)
    # Set while the hold waits for an event instead of a timer: "p<invitee>:<event>" or
    # "o<order id>:<event>". Cleared, with payable_at set, when that event arrives.
    release_key = models.CharField(max_length=120, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("approve_reward", "Can approve and reject rewards and batch them for payment"),
            ("hold_reward", "Can hold rewards for a fraud review and release them"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "beneficiary", "source"], name="reward_once_per_rule_beneficiary_source"
            ),
            # Only a clawback entry is negative: a paid row is never edited; the money taken back
            # is a new entry carried forward against the beneficiary's later payouts.
            models.CheckConstraint(
                condition=Q(amount__gte=0) | Q(status="clawed_back", amount__lt=0),
                name="reward_amount_negative_only_for_clawbacks",
            ),
        ]
        indexes = [
            models.Index(fields=["beneficiary", "-created_at"], name="reward_by_beneficiary"),
            models.Index(
                fields=["release_key"], condition=~Q(release_key=""), name="reward_waiting_for_event"
            ),
            models.Index(fields=["campaign", "source"], name="reward_by_campaign_source"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} → {self.beneficiary_id} ({self.status})"


class RewardTransition(models.Model):
    reward = models.ForeignKey(Reward, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=12, choices=Reward.Status.choices, blank=True)
    to_status = models.CharField(max_length=12, choices=Reward.Status.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.reward_id}: {self.from_status or '-'} → {self.to_status}"


class RewardCap(models.Model):
    """A counter a cap is held on ("rule 7, participant 12, 2027-02-03"): taken with one
    conditional upsert, so concurrent grants can never pass the limit."""

    key = models.CharField(max_length=120, primary_key=True)
    used = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))

    def __str__(self) -> str:
        return f"{self.key}: {self.used}"


class RefundedOrder(models.Model):
    """A refund tombstone: an order refunded before (or while) its order_paid is handled
    earns no commission, whichever of the two the workers run first."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    order_id = models.CharField(max_length=60)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "order_id"], name="refundedorder_once"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} (refunded)"


class CouponCode(models.Model):
    """A code of the bank ops uploaded for a coupon rule; a grant takes one, once."""

    rule = models.ForeignKey(RewardRule, on_delete=models.CASCADE, related_name="coupon_codes")
    code = models.CharField(max_length=64)
    reward = models.OneToOneField(
        Reward, on_delete=models.PROTECT, null=True, blank=True, related_name="coupon"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["rule_id", "id"]
        constraints = [models.UniqueConstraint(fields=["rule", "code"], name="couponcode_unique_per_rule")]
        indexes = [
            models.Index(fields=["rule", "id"], condition=Q(reward__isnull=True), name="couponcode_free")
        ]

    def __str__(self) -> str:
        return self.code


class ReleaseEvent(models.Model):
    """A release event seen ("c3:p812:active_day7"), kept while some rule waits for that event
    name: a reward granted after its event arrived (a slow task, the sweeper) is payable at
    once instead of waiting for an event that will not come again."""

    key = models.CharField(max_length=120, primary_key=True)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return self.key
