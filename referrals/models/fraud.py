"""Fraud scoring: versioned rule sets and the cases a review queue works through."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from campaigns.models import Campaign

from .participant import Participant

# Signal codes and their default points (RULES.md); a rule set may change every number.
DEFAULT_WEIGHTS = {
    "shared_device": 40,
    "same_ip_and_ua": 30,
    "velocity": 25,
    "fast_join": 20,
    "low_yield": 20,
    "device_hub": 30,
    "risk_rank": 40,
}
DEFAULT_PARAMS = {
    "velocity_per_hour": 5,  # valid invitees in one hour above this…
    "velocity_per_day": 50,  # …or in one day above this
    "fast_join_seconds": 3,  # open → join faster than a human could
    "low_yield_factor": 0.25,  # sharer's yield below this share of the campaign's
    "low_yield_min_invitees": 5,  # only judged with at least this many invitees
    "device_hub_participants": 3,  # one device behind more participants than this
    "review_hours": 48,  # the SLA of a new case
    "risk_rank_at": 3,  # WeChat's risk rank from which the signal fires
    "risk_recheck_hours": 24,  # how long a risk rank is trusted
}


def default_weights() -> dict:
    return dict(DEFAULT_WEIGHTS)


def default_params() -> dict:
    return dict(DEFAULT_PARAMS)


class FraudRuleSet(models.Model):
    """Weights and thresholds, versioned: a case records the version that scored it. Exactly
    one version is active; activating another is a separate, recorded step."""

    version = models.PositiveIntegerField(unique=True)
    weights = models.JSONField(default=default_weights, help_text="Points per signal.")
    params = models.JSONField(default=default_params, help_text="Thresholds the signals use.")
    review_at = models.PositiveIntegerField(default=56, help_text="Scores from here on are reviewed.")
    decline_at = models.PositiveIntegerField(default=70, help_text="Scores from here on are declined (held).")
    is_active = models.BooleanField(default=False, editable=False)
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    activated_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="fraudruleset_one_active"
            ),
            models.CheckConstraint(
                condition=Q(decline_at__gt=models.F("review_at")), name="fraudruleset_bands_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"v{self.version}" + (" (active)" if self.is_active else "")

    def band(self, score: int) -> str:
        if score >= self.decline_at:
            return FraudCase.Band.DECLINE
        if score >= self.review_at:
            return FraudCase.Band.REVIEW
        return FraudCase.Band.PASS


class FraudCase(models.Model):
    """A sharer whose score put them in review or decline, with the evidence, until a fraud
    reviewer clears or confirms it."""

    class Band(models.TextChoices):
        PASS = "pass", "Pass"
        REVIEW = "review", "Review"
        DECLINE = "decline", "Decline"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        CLEARED = "cleared", "Cleared"
        CONFIRMED = "confirmed", "Confirmed"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="fraud_cases")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="fraud_cases")
    rule_set = models.ForeignKey(FraudRuleSet, on_delete=models.PROTECT, related_name="cases")
    score = models.PositiveIntegerField()
    band = models.CharField(max_length=8, choices=Band.choices)
    # [{"code": "shared_device", "points": 40, "evidence": {...}}, ...]
    signals = models.JSONField(default=list)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN, db_index=True)
    deadline = models.DateTimeField(help_text="Decide by then; after it the rewards simply stay held.")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True)
    note_to_participant = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["state", "-band", "deadline"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "participant"],
                condition=Q(state="open"),
                name="fraudcase_one_open_per_sharer",
            ),
        ]
        indexes = [models.Index(fields=["state", "band", "deadline"], name="fraudcase_queue")]

    def __str__(self) -> str:
        return f"{self.participant_id} in {self.campaign_id}: {self.score} ({self.band}, {self.state})"
