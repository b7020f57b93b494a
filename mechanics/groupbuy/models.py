"""Group buying: deals ops configure, groups leaders open, members who join them, and the
outbox of what the business backend must do about their orders (fulfil, refund).

Money is integer fen. A group copies its deal's terms when it opens, so an edit of the
deal never changes a group that is already running.
"""

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from campaigns.models import Campaign
from config.money import yuan
from referrals.models import Participant

MAX_GROUP = 50  # seats; a bigger "group" is a mass sale, not a group buy


class Deal(models.Model):
    """An item sold at a group price in a group-buy campaign."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="group_deals")
    item_code = models.CharField(max_length=64, help_text="The business's SKU, sent back with every signal.")
    title = models.CharField(max_length=120)
    original_price_fen = models.PositiveIntegerField("original price (fen)")
    group_price_fen = models.PositiveIntegerField("group price (fen)")
    group_size = models.PositiveSmallIntegerField(
        "members needed (K)",
        default=3,
        validators=[MinValueValidator(2), MaxValueValidator(MAX_GROUP)],
        help_text="The leader counts as the first member.",
    )
    max_size = models.PositiveSmallIntegerField(
        "most members",
        null=True,
        blank=True,
        validators=[MaxValueValidator(MAX_GROUP)],
        help_text="Leave empty for K. Larger only with price tiers: the group keeps taking members "
        "after it completes, and the price drops at each tier.",
    )
    hours = models.PositiveSmallIntegerField(
        "hours to fill (T)", default=24, validators=[MinValueValidator(1), MaxValueValidator(168)]
    )
    virtual_fill = models.BooleanField(
        default=False,
        help_text="Off by default. When on, a group at most “seats the platform may fill” short at its "
        "deadline is completed by the platform; the public rules say so.",
    )
    virtual_fill_max_missing = models.PositiveSmallIntegerField(
        "seats the platform may fill", default=1, validators=[MinValueValidator(1)]
    )
    is_active = models.BooleanField(default=True, help_text="Inactive deals take no new groups.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign_id", "id"]
        verbose_name = "group-buy deal"
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "item_code"], name="groupdeal_item_once_per_campaign"
            ),
            models.CheckConstraint(
                condition=Q(group_price_fen__gt=0, group_price_fen__lt=F("original_price_fen")),
                name="groupdeal_group_price_below_original",
            ),
            models.CheckConstraint(
                condition=Q(group_size__gte=2, group_size__lte=MAX_GROUP), name="groupdeal_group_size_range"
            ),
            models.CheckConstraint(
                condition=Q(max_size__isnull=True)
                | Q(max_size__gte=F("group_size"), max_size__lte=MAX_GROUP),
                name="groupdeal_max_size_at_least_k",
            ),
            models.CheckConstraint(condition=Q(hours__gte=1, hours__lte=168), name="groupdeal_hours_range"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.item_code})"

    @property
    def capacity(self) -> int:
        return self.max_size or self.group_size

    def clean(self) -> None:
        errors = {}
        if self.campaign_id and self.campaign.kind != Campaign.Kind.GROUP_BUY:
            errors["campaign"] = "Deals belong to group-buy campaigns; change the campaign's kind first."
        prices = (self.group_price_fen, self.original_price_fen)
        if None not in prices and not 0 < prices[0] < prices[1]:
            errors["group_price_fen"] = "The group price must be above 0 and below the original price."
        if self.max_size is not None and self.group_size and self.max_size < self.group_size:
            errors["max_size"] = "A group cannot hold fewer members than it needs."
        if self.virtual_fill and self.group_size and self.virtual_fill_max_missing >= self.group_size:
            errors["virtual_fill_max_missing"] = "At least one real member (the leader) must be in the group."
        if errors:
            raise ValidationError(errors)


class Tier(models.Model):
    """From `min_members` real members on, the group's price is `price_fen` (tiered group buy)."""

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="tiers")
    min_members = models.PositiveSmallIntegerField(validators=[MaxValueValidator(MAX_GROUP)])
    price_fen = models.PositiveIntegerField("price (fen)")

    class Meta:
        ordering = ["deal_id", "min_members"]
        constraints = [
            models.UniqueConstraint(fields=["deal", "min_members"], name="grouptier_once_per_size"),
            models.CheckConstraint(condition=Q(price_fen__gt=0), name="grouptier_price_positive"),
        ]

    def __str__(self) -> str:
        return f"from {self.min_members}: ¥{yuan(self.price_fen)}"


class Group(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open (filling)"
        COMPLETED = "completed", "Completed"
        EXPIRED = "expired", "Expired"
        CANCELLED = "cancelled", "Cancelled"

    # Shown in the leader's link; unguessable, so groups cannot be listed by counting ids.
    code = models.CharField(max_length=16, unique=True)
    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="groups")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    leader = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="led_groups")
    share_code = models.CharField(max_length=32, help_text="The leader's share link: members join with it.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    # The deal's terms when the group opened.
    group_size = models.PositiveSmallIntegerField()
    capacity = models.PositiveSmallIntegerField()
    price_fen = models.PositiveIntegerField(help_text="What each member pays when joining.")
    tiers = models.JSONField(default=list, blank=True, help_text="[[min members, price fen], …]")
    virtual_fill_max_missing = models.PositiveSmallIntegerField(default=0, help_text="0: no virtual fill.")
    member_count = models.PositiveSmallIntegerField(default=0)
    virtual_count = models.PositiveSmallIntegerField(default=0)
    final_price_fen = models.PositiveIntegerField(null=True, blank=True)
    opened_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    # When it stopped taking members (full, or its deadline after completing); prices settle then.
    closed_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True, help_text="Expired or cancelled at.")
    end_note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            # The overfill guard of last resort: the join's row lock is the first.
            models.CheckConstraint(
                condition=Q(member_count__lte=F("capacity") - F("virtual_count")),
                name="group_never_overfilled",
            ),
            models.CheckConstraint(
                condition=Q(capacity__gte=F("group_size")), name="group_capacity_at_least_k"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["open", "completed", "expired", "cancelled"]),
                name="group_status_known",
            ),
            models.CheckConstraint(
                condition=~Q(status="completed") | Q(completed_at__isnull=False),
                name="group_completed_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "expires_at"], name="group_due"),
            models.Index(fields=["campaign", "status"], name="group_by_campaign"),
        ]

    def __str__(self) -> str:
        return f"group {self.code}"

    @property
    def seats_left(self) -> int:
        return max(self.group_size - self.member_count - self.virtual_count, 0)

    @property
    def taking_members(self) -> bool:
        return self.status == self.Status.OPEN or (
            self.status == self.Status.COMPLETED and self.closed_at is None
        )

    def price_for(self, members: int) -> int:
        """The price for this many real members: the lowest tier they reach, else the group price."""
        price = self.price_fen
        for min_members, tier_price in self.tiers:
            if members >= min_members:
                price = min(price, tier_price)
        return price


class Member(models.Model):
    class Status(models.TextChoices):
        JOINED = "joined", "Joined, group filling"
        CONFIRMED = "confirmed", "Group completed"
        RELEASED = "released", "Released (group failed)"

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="members")
    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="+")
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="group_memberships")
    seat = models.PositiveSmallIntegerField(help_text="1 is the leader.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.JOINED)
    price_fen = models.PositiveIntegerField()
    order_id = models.CharField(max_length=64, blank=True, help_text="The business's order, if given.")
    joined_at = models.DateTimeField()
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["group_id", "seat"]
        constraints = [
            models.UniqueConstraint(fields=["group", "participant"], name="groupmember_once_per_group"),
            models.UniqueConstraint(fields=["group", "seat"], name="groupmember_one_per_seat"),
            # One filling group per deal at a time, as leader or member: a participant cannot
            # hold seats in several groups of the same item while they fill.
            models.UniqueConstraint(
                fields=["deal", "participant"],
                condition=Q(status="joined"),
                name="groupmember_one_filling_group_per_deal",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.participant_id} in {self.group_id} (seat {self.seat})"

    @property
    def is_leader(self) -> bool:
        return self.seat == 1


class Signal(models.Model):
    """The outbox the business backend pulls (and acknowledges) over the server API: what to
    do about a member's order. Written in the transaction that changes the group, so no
    change goes unsignalled; unique per member and kind, so none is signalled twice."""

    class Kind(models.TextChoices):
        FULFIL = "fulfil", "Fulfil the order (group completed)"
        REFUND = "refund", "Refund the order (group failed)"
        REFUND_DIFFERENCE = "refund_difference", "Refund the difference (price tier reached)"

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="signals")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="signals")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    amount_fen = models.PositiveIntegerField()
    created_at = models.DateTimeField()
    acked_at = models.DateTimeField(null=True, blank=True)
    acked_by = models.CharField(max_length=40, blank=True, help_text="The API key that acknowledged it.")

    class Meta:
        ordering = ["id"]
        verbose_name = "order signal"
        constraints = [
            models.UniqueConstraint(fields=["member", "kind"], name="groupsignal_once_per_member_kind"),
        ]
        indexes = [
            models.Index(fields=["id"], condition=Q(acked_at__isnull=True), name="groupsignal_unacked"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"
