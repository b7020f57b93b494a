"""Invite-N tasks ("task treasure"): invite N friends who each become valid, tier by tier.

The tiers *are* the campaign's milestone reward rules (RewardRule.Trigger.MILESTONE): the
reward ledger already grants each of them once per participant when their N-th invited
friend becomes valid. This app owns the task's presentation, the progress people see, the
record of who reached which tier (and when), the sweep that writes it to the event log,
and the compliance checks. There is no second ledger.
"""

from django.db import models
from django.db.models import Q

from campaigns.models import Campaign
from referrals.models import Participant, Referral


class InviteTask(models.Model):
    """The task of an invite-task campaign (one per campaign)."""

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="invite_task")
    title = models.CharField(max_length=80, help_text="e.g. “Invite friends, open the treasure chest”.")
    description = models.TextField(blank=True, help_text="Shown above the tiers in the mini program.")
    # The event-log sweep has looked at friends who became valid up to here. Cleared when the
    # tiers change, so the next sweep looks at everyone again.
    swept_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "invite task"

    def __str__(self) -> str:
        return self.title


class TierReached(models.Model):
    """A participant reached a tier: their valid friends reached the tier's count.

    Written once per (campaign, participant, tier) by the sweep, which writes the
    `invite_tier_reached` event in the same transaction."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="invite_tiers_reached")
    participant = models.ForeignKey(
        Participant, on_delete=models.CASCADE, related_name="invite_tiers_reached"
    )
    milestone = models.PositiveIntegerField(help_text="Valid friends the tier needs.")
    reached_at = models.DateTimeField(help_text="When the friend who made the count became valid.")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "tier reached"
        verbose_name_plural = "tiers reached"
        ordering = ["-reached_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "participant", "milestone"], name="tierreached_once_per_participant"
            ),
            models.CheckConstraint(condition=Q(milestone__gte=1), name="tierreached_milestone_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.participant_id} reached {self.milestone} in {self.campaign_id}"


class TaskProgress(Referral):
    """A participant of an invite-task campaign, seen as their progress (admin list only).

    A proxy of the membership row: progress is computed from the invite tree, never stored."""

    class Meta:
        proxy = True
        verbose_name = "task progress"
        verbose_name_plural = "task progress"
