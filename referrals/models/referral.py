from django.db import models
from django.db.models import Q

from campaigns.models import Campaign, Channel

from .participant import Participant


class ShareLink(models.Model):
    """A sharer's link into a campaign, one per (campaign, sharer, channel).

    `code` is short enough to be a mini-program `scene` (≤ 32 characters) and random
    enough not to be guessed: 16 URL-safe characters carry 96 random bits.
    """

    code = models.CharField(max_length=32, unique=True)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="share_links")
    sharer = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="share_links")
    channel = models.ForeignKey(Channel, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "sharer", "channel"],
                nulls_distinct=False,
                name="sharelink_one_per_sharer_and_channel",
            ),
        ]

    def __str__(self) -> str:
        return self.code


class ShareOpen(models.Model):
    """Someone opened a share link: the evidence an attribution points at."""

    link = models.ForeignKey(ShareLink, on_delete=models.CASCADE, related_name="opens")
    opener = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="opens")
    opened_at = models.DateTimeField(db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    device_id = models.CharField(max_length=64, blank=True, default="")
    user_agent = models.CharField(max_length=300, blank=True, default="")
    client_event_id = models.CharField(max_length=64)

    class Meta:
        constraints = [
            # A retried open (same client event id) is recorded once.
            models.UniqueConstraint(
                fields=["opener", "client_event_id"], name="shareopen_once_per_client_id"
            ),
        ]
        indexes = [models.Index(fields=["link", "opener", "-opened_at"], name="shareopen_link_opener")]

    def __str__(self) -> str:
        return f"{self.opener_id} opened {self.link_id}"


class Referral(models.Model):
    """One participant's membership of a campaign, and the edge to whoever invited them.

    Every joined participant has exactly one row per campaign (the unique constraint
    below is the "one inviter per invitee" rule). Roots have no inviter and depth 0.
    """

    class Status(models.TextChoices):
        JOINED = "joined", "Joined"
        VALID = "valid", "Valid"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="referrals")
    invitee = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="memberships")
    inviter = models.ForeignKey(
        Participant, on_delete=models.SET_NULL, null=True, blank=True, related_name="invitations"
    )
    root = models.ForeignKey(Participant, on_delete=models.SET_NULL, null=True, related_name="+")
    link = models.ForeignKey(ShareLink, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    channel = models.ForeignKey(Channel, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    open = models.ForeignKey(ShareOpen, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    depth = models.PositiveIntegerField(default=0)
    # Why this edge exists (or why there is none): {"rule": ..., "code": ..., ...}.
    attribution = models.JSONField(default=dict)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.JOINED)
    joined_at = models.DateTimeField()
    joined_ip = models.GenericIPAddressField(null=True, blank=True)
    joined_device_id = models.CharField(max_length=64, blank=True, default="")
    valid_at = models.DateTimeField(null=True, blank=True)
    valid_event = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "invitee"], name="referral_one_inviter_per_invitee"),
            models.CheckConstraint(condition=~Q(inviter=models.F("invitee")), name="referral_not_self"),
            models.CheckConstraint(
                condition=Q(inviter__isnull=True, depth=0) | Q(inviter__isnull=False, depth__gt=0),
                name="referral_depth_matches_inviter",
            ),
            models.CheckConstraint(
                condition=Q(status="joined", valid_at__isnull=True)
                | Q(status="valid", valid_at__isnull=False),
                name="referral_valid_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "inviter", "-joined_at"], name="referral_by_inviter"),
            models.Index(fields=["campaign", "root"], name="referral_by_root"),
        ]

    def __str__(self) -> str:
        return f"{self.inviter_id or '-'} → {self.invitee_id} in {self.campaign_id}"
