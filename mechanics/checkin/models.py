"""Daily check-in: the plan of a campaign, one row per participant per campaign-local day,
and the streak tiers each participant reached (once per campaign)."""

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from campaigns.models import Campaign
from referrals.models import Participant


def default_tiers() -> list[int]:
    return [3, 7, 14]


class CheckinPlan(models.Model):
    campaign = models.OneToOneField(
        Campaign,
        on_delete=models.CASCADE,
        related_name="checkin_plan",
        limit_choices_to={"kind": Campaign.Kind.CHECKIN},
    )
    streak_tiers = ArrayField(
        models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(366)]),
        default=default_tiers,
        size=10,
        help_text="Days in a row that earn a streak reward, e.g. 3,7,14. Each tier is earned once per "
        "campaign; what it gives is a reward rule on the event checkin_streak_<days>.",
    )
    makeup_cards = models.PositiveSmallIntegerField(
        "make-up cards per participant",
        default=0,
        validators=[MaxValueValidator(31)],
        help_text="0: a missed day resets the streak. Otherwise each participant may fill this many "
        "missed days per campaign. Cards are given by the plan, never earned by sharing.",
    )
    makeup_window_days = models.PositiveSmallIntegerField(
        "make-up window (days)",
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(31)],
        help_text="How far back a missed day may be filled.",
    )
    share_required = models.BooleanField(
        "must share to check in",
        default=False,
        help_text="Never allowed: WeChat forbids making sharing the condition of a feature. A plan "
        "with this switched on is refused when saved and when the campaign is launched.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(makeup_window_days__gte=1), name="checkinplan_makeup_window_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"Check-in plan of {self.campaign}"

    @property
    def tiers(self) -> list[int]:
        return sorted(set(self.streak_tiers or []))


class Checkin(models.Model):
    """One check-in (or a make-up of a missed day). `day` is the campaign's local date."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="checkins")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="checkins")
    day = models.DateField()
    checked_at = models.DateTimeField()
    # Days in a row ending with this day, this one included (updated when a make-up fills a gap).
    streak = models.PositiveIntegerField()
    is_makeup = models.BooleanField(default=False)

    class Meta:
        ordering = ["-day", "-id"]
        constraints = [
            # A retried or concurrent check-in lands on this and is answered with the first row.
            models.UniqueConstraint(fields=["campaign", "participant", "day"], name="checkin_once_per_day"),
            models.CheckConstraint(condition=Q(streak__gte=1), name="checkin_streak_positive"),
        ]
        indexes = [models.Index(fields=["campaign", "day"], name="checkin_by_campaign_day")]

    def __str__(self) -> str:
        return f"{self.participant_id} on {self.day} (streak {self.streak})"


class StreakTier(models.Model):
    """A streak tier a participant reached: earned once per campaign, whatever happens later."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="+")
    days = models.PositiveSmallIntegerField()
    checkin = models.ForeignKey(Checkin, on_delete=models.SET_NULL, null=True, related_name="+")
    reached_at = models.DateTimeField()

    class Meta:
        ordering = ["-reached_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "participant", "days"], name="streaktier_once"),
        ]

    def __str__(self) -> str:
        return f"{self.participant_id}: {self.days} days"
