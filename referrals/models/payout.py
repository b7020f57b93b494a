"""Payout batches: finance makes one from approved rewards, another finance user approves it."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from .reward import Reward


class PayoutBatch(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        APPROVED = "approved", "Approved (sending)"

    name = models.CharField(max_length=80)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    approved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Maker–checker: whoever made a batch may not approve it.
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | ~Q(approved_by=F("created_by")),
                name="payoutbatch_checker_is_not_maker",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Payout(models.Model):
    """One attempt to pay one reward. `out_bill_no` is what WeChat Pay keys the transfer on:
    resending it can never pay twice. A reward gets a new attempt (and a new bill number)
    only after the previous one is known to have failed."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent (outcome not yet known)"
        WAIT_USER_CONFIRM = "wait_user", "Waiting for the user to confirm"
        SUCCEEDED = "succeeded", "Paid"
        FAILED = "failed", "Failed (no money moved)"
        PARKED = "parked", "Parked for a person to look at"

    FINAL = (Status.SUCCEEDED, Status.FAILED)

    batch = models.ForeignKey(PayoutBatch, on_delete=models.PROTECT, related_name="payouts")
    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="payouts")
    attempt = models.PositiveSmallIntegerField(default=1)
    openid = models.CharField(max_length=64)
    # What is sent: the reward's amount less what this payout recovers of earlier clawbacks.
    amount_fen = models.PositiveIntegerField()
    offset_fen = models.PositiveIntegerField(default=0)
    out_bill_no = models.CharField(max_length=32, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    provider_state = models.CharField(max_length=20, blank=True)
    transfer_bill_no = models.CharField(max_length=64, blank=True)
    fail_reason = models.CharField(max_length=200, blank=True)
    # Deliveries of the send task: a message that keeps killing its worker is parked
    # after three instead of looping (acks_late + reject_on_worker_lost).
    deliveries = models.PositiveIntegerField(default=0)
    # The daily limit counters (per recipient, per merchant) this payout took when it was
    # sent; given back if it fails.
    cap_keys = models.JSONField(default=list, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["batch_id", "id"]
        constraints = [
            # WeChat Pay's minimum; 0 when clawbacks recover the whole reward (nothing is sent).
            models.CheckConstraint(
                condition=Q(amount_fen__gte=10) | Q(amount_fen=0, offset_fen__gt=0),
                name="payout_at_least_ten_fen_or_fully_offset",
            ),
            models.UniqueConstraint(fields=["reward", "attempt"], name="payout_attempt_unique"),
            # One live attempt per reward: a new one only after the last failed.
            models.UniqueConstraint(
                fields=["reward"], condition=~Q(status="failed"), name="payout_one_live_attempt"
            ),
        ]

    def __str__(self) -> str:
        return self.out_bill_no

    @classmethod
    def live(cls):
        """Attempts not known to have failed: a reward with one of these is being paid (or was)."""
        return cls.objects.exclude(status=cls.Status.FAILED)


class ClawbackRecovery(models.Model):
    """Part of a clawback recovered from a later payout of the same beneficiary. It counts
    as recovered once that payout succeeded, and not at all if it failed."""

    clawback = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="recoveries")
    payout = models.ForeignKey(Payout, on_delete=models.PROTECT, related_name="recoveries")
    amount_fen = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="clawbackrecovery_positive"),
            models.UniqueConstraint(fields=["clawback", "payout"], name="clawbackrecovery_once"),
        ]

    def __str__(self) -> str:
        return f"{self.amount_fen} fen of clawback {self.clawback_id} in {self.payout}"


class Reconciliation(models.Model):
    """A daily comparison of our payouts with WeChat Pay's records, and every difference."""

    day = models.DateField(help_text="Payouts last changed on this day (UTC) were compared.")
    checked = models.PositiveIntegerField(default=0)
    differences = models.JSONField(default=list)
    ran_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-day", "-ran_at"]

    def __str__(self) -> str:
        return f"{self.day}: {len(self.differences)} difference(s) in {self.checked}"
