"""Price cut ("help me cut the price"): offers ops configure, tasks participants start, and
the helps of friends who join. Money is integer fen. A task copies its offer's terms when
it starts, so editing an offer never changes a running task."""

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from campaigns.models import Campaign
from config.money import yuan
from referrals.models import Participant

from .schedule import DECREASING, EQUAL, RANDOM, schedule_findings

MAX_HELPERS = 100


class Schedule(models.TextChoices):
    EQUAL_CUTS = EQUAL, "Equal cuts"
    DECREASING_CUTS = DECREASING, "Decreasing (the first helpers cut most)"
    RANDOM_CUTS = RANDOM, "Random within published bounds"


class Offer(models.Model):
    """An item whose price friends cut from a start price down to a floor price."""

    Schedule = Schedule

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="cut_offers")
    item_code = models.CharField(max_length=64, help_text="The business's SKU.")
    title = models.CharField(max_length=120)
    start_price_fen = models.PositiveIntegerField("start price (fen)")
    floor_price_fen = models.PositiveIntegerField(
        "floor price (fen)", help_text="The price once every needed helper has helped (0: free)."
    )
    helpers_needed = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(MAX_HELPERS)]
    )
    schedule = models.CharField(max_length=10, choices=Schedule.choices, default=Schedule.EQUAL_CUTS)
    min_cut_fen = models.PositiveIntegerField("random cut from (fen)", null=True, blank=True)
    max_cut_fen = models.PositiveIntegerField("random cut to (fen)", null=True, blank=True)
    hours = models.PositiveSmallIntegerField(
        "hours per task", default=24, validators=[MinValueValidator(1), MaxValueValidator(168)]
    )
    new_users_only = models.BooleanField(
        default=False, help_text="Only friends who join the campaign through the task may help."
    )
    is_active = models.BooleanField(default=True, help_text="Inactive offers take no new tasks.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign_id", "id"]
        verbose_name = "price-cut offer"
        constraints = [
            models.UniqueConstraint(fields=["campaign", "item_code"], name="cutoffer_item_once_per_campaign"),
            models.CheckConstraint(
                condition=Q(floor_price_fen__lt=F("start_price_fen")), name="cutoffer_floor_below_start"
            ),
            models.CheckConstraint(
                condition=Q(helpers_needed__gte=1, helpers_needed__lte=MAX_HELPERS),
                name="cutoffer_helpers_range",
            ),
            models.CheckConstraint(
                condition=~Q(schedule=RANDOM) | Q(min_cut_fen__gt=0, max_cut_fen__gte=F("min_cut_fen")),
                name="cutoffer_random_has_bounds",
            ),
            models.CheckConstraint(condition=Q(hours__gte=1, hours__lte=168), name="cutoffer_hours_range"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.item_code})"

    @property
    def total_cut_fen(self) -> int:
        return self.start_price_fen - self.floor_price_fen

    def findings(self) -> list[str]:
        return schedule_findings(
            schedule=self.schedule,
            total=self.total_cut_fen,
            helpers=self.helpers_needed,
            min_cut=self.min_cut_fen,
            max_cut=self.max_cut_fen,
        )

    def clean(self) -> None:
        errors = {}
        if self.campaign_id and self.campaign.kind != Campaign.Kind.PRICE_CUT:
            errors["campaign"] = "Offers belong to price-cut campaigns; change the campaign's kind first."
        if None not in (self.start_price_fen, self.floor_price_fen, self.helpers_needed):
            if self.floor_price_fen >= self.start_price_fen:
                errors["floor_price_fen"] = "The floor price must be below the start price."
            elif found := self.findings():
                errors["schedule"] = found
        if errors:
            raise ValidationError(errors)


class Task(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open (cutting)"
        COMPLETED = "completed", "Completed (at the floor price)"
        EXPIRED = "expired", "Expired"
        CANCELLED = "cancelled", "Cancelled"

    code = models.CharField(max_length=16, unique=True)
    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="tasks")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    starter = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="cut_tasks")
    share_code = models.CharField(max_length=32, help_text="The starter's share link: helpers join with it.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    # The offer's terms when the task started.
    start_price_fen = models.PositiveIntegerField()
    floor_price_fen = models.PositiveIntegerField()
    helpers_needed = models.PositiveSmallIntegerField()
    schedule = models.CharField(max_length=10, choices=Schedule.choices)
    min_cut_fen = models.PositiveIntegerField(null=True, blank=True)
    max_cut_fen = models.PositiveIntegerField(null=True, blank=True)
    new_users_only = models.BooleanField(default=False)
    seed = models.CharField(max_length=32, editable=False, help_text="Draws the random cuts (reproducible).")
    price_fen = models.PositiveIntegerField(help_text="The price now.")
    helper_count = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True, help_text="Expired or cancelled at.")
    end_note = models.CharField(max_length=200, blank=True)
    redeemed_at = models.DateTimeField(null=True, blank=True)
    order_id = models.CharField(
        max_length=64, blank=True, help_text="The order that bought at the cut price."
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # Never below the floor, and at the floor exactly when every needed helper helped.
            models.CheckConstraint(
                condition=Q(helper_count=F("helpers_needed"), price_fen=F("floor_price_fen"))
                | Q(helper_count__lt=F("helpers_needed"), price_fen__gt=F("floor_price_fen")),
                name="cuttask_floor_exactly_at_the_last_helper",
            ),
            models.CheckConstraint(
                condition=Q(price_fen__lte=F("start_price_fen")), name="cuttask_price_at_most_start"
            ),
            models.CheckConstraint(
                condition=~Q(status="completed")
                | Q(completed_at__isnull=False, price_fen=F("floor_price_fen")),
                name="cuttask_completed_at_floor",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["open", "completed", "expired", "cancelled"]),
                name="cuttask_status_known",
            ),
            models.UniqueConstraint(
                fields=["offer", "starter"], condition=Q(status="open"), name="cuttask_one_open_per_offer"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "expires_at"], name="cuttask_due"),
            models.Index(fields=["campaign", "status"], name="cuttask_by_campaign"),
        ]

    def __str__(self) -> str:
        return f"cut task {self.code}"

    @property
    def remaining_fen(self) -> int:
        return self.price_fen - self.floor_price_fen

    @property
    def helpers_left(self) -> int:
        return self.helpers_needed - self.helper_count


class Help(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="helps")
    helper = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="cut_helps")
    seq = models.PositiveSmallIntegerField(help_text="1 for the first helper.")
    amount_fen = models.PositiveIntegerField()
    price_after_fen = models.PositiveIntegerField()
    helped_at = models.DateTimeField()

    class Meta:
        ordering = ["task_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["task", "helper"], name="cuthelp_once_per_helper"),
            models.UniqueConstraint(fields=["task", "seq"], name="cuthelp_one_per_step"),
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="cuthelp_cuts_something"),
        ]

    def __str__(self) -> str:
        return f"{self.helper_id} cut {yuan(self.amount_fen)} off {self.task_id}"
