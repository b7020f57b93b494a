"""Campaigns: the activities themselves, their channels and their card/poster templates."""

import re
import zoneinfo
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a time zone name such as Asia/Shanghai.")


def validate_background_size(file) -> None:
    limit = settings.FISSION_TEMPLATE_MAX_BYTES
    if file.size > limit:
        raise ValidationError(
            f"The image is {file.size / 1_048_576:.1f} MB; "
            f"backgrounds may be at most {limit / 1_048_576:.1f} MB."
        )


class CampaignKind(models.TextChoices):
    REFERRAL = "referral", "Referral"
    GREETING_CARD = "greeting_card", "Greeting card"
    IMAGE_SHARE = "image_share", "Image share"
    INVITE_TASK = "invite_task", "Invite-N task"
    GROUP_BUY = "group_buy", "Group buy"
    PRICE_CUT = "price_cut", "Price cut"
    DISTRIBUTION = "distribution", "Distribution"
    CHECKIN = "checkin", "Check-in"


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    LIVE = "live", "Live"
    PAUSED = "paused", "Paused"
    ENDED = "ended", "Ended"
    ARCHIVED = "archived", "Archived"


class GoalMetric(models.TextChoices):
    VALID_USERS = "valid_users", "Valid new users"
    JOINS = "joins", "Joins"
    SHARES = "shares", "Shares"
    ORDERS = "orders", "Orders"


class Comparison(models.TextChoices):
    GTE = "gte", "≥"
    GT = "gt", ">"
    EQ = "eq", "="
    LTE = "lte", "≤"
    LT = "lt", "<"


class Campaign(models.Model):
    Kind = CampaignKind
    Status = CampaignStatus
    GoalMetric = GoalMetric
    Comparison = Comparison

    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.REFERRAL)
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=80, unique=True, help_text="Used in links and the API. Lowercase.")
    description = models.TextField(blank=True)
    rules_text = models.TextField(
        "public rules", blank=True, help_text="Shown to participants in the mini program, in full."
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT, db_index=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)

    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    time_zone = models.CharField(
        max_length=64,
        default="Asia/Shanghai",
        validators=[validate_time_zone],
        help_text="Day boundaries of reports and daily budgets use this zone.",
    )

    goal_metric = models.CharField(max_length=20, choices=GoalMetric.choices, default=GoalMetric.VALID_USERS)
    goal_target = models.PositiveIntegerField(validators=[MinValueValidator(1)])

    budget_total = models.DecimalField(
        "total budget (¥)",
        max_digits=12,
        decimal_places=2,
        default=Decimal("0.00"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    budget_daily = models.DecimalField(
        "daily budget (¥)",
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Leave empty for no daily limit.",
    )

    # Money held by the database: reserved when a reward is granted, moved to spent when
    # it is paid, released when it is rejected, voided or expires. Never read-then-write.
    budget_reserved = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("0.00"), editable=False
    )
    budget_spent = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("0.00"), editable=False
    )
    level2_enabled = models.BooleanField(
        "allow level-2 commissions",
        default=False,
        help_text="Distribution campaigns only. Level-2 commissions are legal only on real orders; "
        "WeChat penalises multi-level schemes. Three or more levels are always refused.",
    )
    reward_rules_text = models.TextField(
        "reward rules (generated)",
        blank=True,
        editable=False,
        help_text="Written from the reward rules; shown to participants with the public rules.",
    )

    attribution_window_hours = models.PositiveIntegerField(
        default=72,
        validators=[MinValueValidator(1)],
        help_text="An open of a share link older than this does not attribute a join.",
    )

    # What makes an invitee a *valid user* of this campaign.
    valid_event_name = models.CharField(
        "valid-user event",
        max_length=64,
        default="join",
        help_text="The event that makes an invitee valid, e.g. resume_completed or order_paid.",
    )
    valid_property = models.CharField(
        "property",
        max_length=64,
        blank=True,
        help_text="Optional event property to compare, e.g. completeness.",
    )
    valid_comparison = models.CharField(max_length=3, choices=Comparison.choices, default=Comparison.GTE)
    valid_threshold = models.DecimalField(
        "threshold", max_digits=14, decimal_places=4, null=True, blank=True, help_text="e.g. 0.6"
    )
    valid_within_hours = models.PositiveIntegerField(
        "within (hours of joining)",
        null=True,
        blank=True,
        help_text="Optional: the event only counts if it happens this many hours after joining.",
    )

    invite_target = models.PositiveIntegerField(
        "friends to invite",
        null=True,
        blank=True,
        help_text="Optional: valid friends a participant needs, shown as “2 more friends to go”.",
    )

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="campaigns"
    )
    cloned_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="clones", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="campaign_ends_after_start"),
            models.CheckConstraint(
                condition=Q(budget_total__gte=0), name="campaign_budget_total_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(budget_daily__isnull=True) | Q(budget_daily__gte=0),
                name="campaign_budget_daily_not_negative",
            ),
            models.CheckConstraint(condition=Q(goal_target__gt=0), name="campaign_goal_positive"),
            models.CheckConstraint(
                condition=Q(budget_reserved__gte=0, budget_spent__gte=0)
                & Q(budget_total__gte=F("budget_reserved") + F("budget_spent")),
                name="campaign_budget_never_overspent",
            ),
            models.CheckConstraint(
                condition=Q(attribution_window_hours__gt=0), name="campaign_attribution_window_positive"
            ),
            models.CheckConstraint(
                condition=Q(status__in=CampaignStatus.values), name="campaign_status_known"
            ),
            models.CheckConstraint(condition=Q(kind__in=CampaignKind.values), name="campaign_kind_known"),
            models.CheckConstraint(
                # A property is compared with a threshold: one without the other means nothing.
                condition=Q(valid_property="", valid_threshold__isnull=True)
                | (~Q(valid_property="") & Q(valid_threshold__isnull=False)),
                name="campaign_valid_property_has_threshold",
            ),
        ]
        indexes = [models.Index(fields=["status", "starts_at"], name="campaign_status_starts")]

    def __str__(self) -> str:
        return self.name

    @property
    def attribution_window(self) -> timedelta:
        return timedelta(hours=self.attribution_window_hours)

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    def clean(self) -> None:
        errors = {}
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = "The campaign must end after it starts."
        if self.valid_property and self.valid_threshold is None:
            errors["valid_threshold"] = "Give the threshold that the property is compared with."
        if self.valid_threshold is not None and not self.valid_property:
            errors["valid_property"] = "Name the event property that the threshold applies to."
        committed = (self.budget_reserved or 0) + (self.budget_spent or 0)
        if self.budget_total is not None and self.budget_total < committed:
            errors["budget_total"] = f"¥{committed} is already reserved or spent; the budget cannot be lower."
        if (
            self.budget_daily is not None
            and self.budget_total is not None
            and self.budget_daily > self.budget_total
        ):
            errors["budget_daily"] = "The daily budget cannot be larger than the total budget."
        if errors:
            raise ValidationError(errors)

    def valid_user_rule_text(self) -> str:
        """The valid-user definition in words, e.g. 'resume_completed with completeness ≥ 0.6'."""
        text = self.valid_event_name
        if self.valid_property:
            comparison = self.get_valid_comparison_display()
            text += f" with {self.valid_property} {comparison} {self.valid_threshold.normalize()}"
        if self.valid_within_hours:
            text += f" within {self.valid_within_hours} h of joining"
        return text

    def event_makes_valid(self, *, event_name: str, properties: dict) -> bool:
        """Does this event meet the valid-user definition? (The time limit is checked by the caller.)"""
        if event_name != self.valid_event_name:
            return False
        if not self.valid_property:
            return True
        raw = properties.get(self.valid_property)
        try:
            value = Decimal(str(raw))
        except (ArithmeticError, ValueError, TypeError):
            return False
        if not value.is_finite():
            return False
        threshold = self.valid_threshold
        return {
            self.Comparison.GTE: value >= threshold,
            self.Comparison.GT: value > threshold,
            self.Comparison.EQ: value == threshold,
            self.Comparison.LTE: value <= threshold,
            self.Comparison.LT: value < threshold,
        }[self.valid_comparison]


class CampaignTransition(models.Model):
    """One status change of a campaign: who (None for the scheduler), when, from what to what."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=12, choices=Campaign.Status.choices)
    to_status = models.CharField(max_length=12, choices=Campaign.Status.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.campaign}: {self.from_status} → {self.to_status}"


class Channel(models.Model):
    """Where shares of a campaign are placed, with what ops spent there (for cost per user)."""

    class Kind(models.TextChoices):
        WECHAT_GROUP = "wechat_group", "WeChat group"
        MOMENTS = "moments", "Moments"
        CHAT = "chat", "1:1 chat"
        OFFICIAL_ACCOUNT = "official_account", "Official account"
        OFFLINE_POSTER = "offline_poster", "Offline poster"
        KOL = "kol", "KOL"
        OTHER = "other", "Other"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="channels")
    code = models.SlugField(max_length=32, help_text="Short code carried in share links, e.g. moments.")
    name = models.CharField(max_length=80)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.OTHER)
    spend = models.DecimalField(
        "spend (¥)",
        max_digits=12,
        decimal_places=2,
        default=Decimal("0.00"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="What was spent on this channel outside rewards (ads, KOL fees, printing).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign_id", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "code"],
                name="channel_code_unique_per_campaign",
                violation_error_message="Another channel of this campaign already uses this code.",
            ),
            models.CheckConstraint(condition=Q(spend__gte=0), name="channel_spend_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class PosterTemplate(models.Model):
    """A card or poster background with where the avatar, nickname and QR code go (in pixels)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="templates")
    name = models.CharField(max_length=80)
    background = models.ImageField(
        upload_to="templates/%Y/%m/",
        validators=[validate_background_size],
        help_text="PNG or JPEG, at most 5 MB. Its size in pixels is the poster's size.",
    )
    width = models.PositiveIntegerField(editable=False, default=0)
    height = models.PositiveIntegerField(editable=False, default=0)
    avatar_x = models.PositiveIntegerField(default=40)
    avatar_y = models.PositiveIntegerField(default=40)
    avatar_size = models.PositiveIntegerField(default=120, validators=[MinValueValidator(16)])
    nickname_x = models.PositiveIntegerField(default=180)
    nickname_y = models.PositiveIntegerField(default=80)
    nickname_size = models.PositiveIntegerField(
        "nickname font size", default=36, validators=[MinValueValidator(8)]
    )
    nickname_color = models.CharField(
        max_length=7, default="#FFFFFF", help_text="Hex colour such as #FFFFFF."
    )
    qr_x = models.PositiveIntegerField(default=40)
    qr_y = models.PositiveIntegerField(default=600)
    qr_size = models.PositiveIntegerField(default=200, validators=[MinValueValidator(64)])
    is_default = models.BooleanField(
        default=False, help_text="The template used when a sharer does not pick one."
    )
    # Bumped on every save: rendered posters are cached under it, so an edit invalidates them.
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign_id", "-is_default", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign"],
                condition=Q(is_default=True),
                name="postertemplate_one_default_per_campaign",
                violation_error_message=(
                    "This campaign already has a default template; untick the other one first."
                ),
            ),
            models.CheckConstraint(condition=Q(avatar_size__gte=16), name="postertemplate_avatar_size_min"),
            models.CheckConstraint(condition=Q(qr_size__gte=64), name="postertemplate_qr_size_min"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.width, self.height = self._background_size()
        if self.pk:
            self.version = F("version") + 1
        super().save(*args, **kwargs)
        if isinstance(self.version, models.expressions.Combinable):
            self.refresh_from_db(fields=["version"])

    def clean(self) -> None:
        errors = {}
        if not re.fullmatch(r"#[0-9A-Fa-f]{6}", self.nickname_color or ""):
            errors["nickname_color"] = "Use a hex colour such as #FFFFFF."
        width, height = self._background_size()
        if width and height:
            for label, x, y, size in (
                ("avatar", self.avatar_x, self.avatar_y, self.avatar_size),
                ("qr", self.qr_x, self.qr_y, self.qr_size),
            ):
                if x + size > width or y + size > height:
                    errors[f"{label}_size"] = (
                        f"The {label.replace('qr', 'QR code')} at ({x}, {y}) of size {size} does not fit "
                        f"in the {width}×{height} background."
                    )
            if self.nickname_x >= width or self.nickname_y >= height:
                errors["nickname_x"] = f"The nickname starts outside the {width}×{height} background."
        if errors:
            raise ValidationError(errors)

    def _background_size(self) -> tuple[int, int]:
        if not self.background:
            return 0, 0
        try:
            return self.background.width, self.background.height
        except (OSError, ValueError):
            return 0, 0
