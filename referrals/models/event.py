"""The append-only event log.

The table is created by a migration (RunSQL) as a PostgreSQL table partitioned by day
on `received_at`, with a BRIN index on that column and no other index: the hot path
only appends. Idempotency lives in `EventReceipt`, a narrow table keyed by
(participant, client event id) that is pruned once its events are too old to be sent
again (see services.events.ACCEPT_PAST).
"""

from django.db import models


class Event(models.Model):
    class Source(models.IntegerChoices):
        CLIENT = 1, "Mini program"
        SERVER = 2, "Business backend"
        SYSTEM = 3, "Fission"

    id = models.BigIntegerField(primary_key=True)
    received_at = models.DateTimeField()
    occurred_at = models.DateTimeField()
    campaign_id = models.IntegerField(null=True)
    participant_id = models.BigIntegerField(null=True)
    name = models.CharField(max_length=64)
    source = models.SmallIntegerField(choices=Source.choices)
    # Resolved when written, so analytics never joins at read time.
    inviter_id = models.BigIntegerField(null=True)
    channel_id = models.IntegerField(null=True)
    client_event_id = models.CharField(max_length=80)
    properties = models.JSONField(null=True)

    class Meta:
        managed = False  # created and partitioned by migration 0002_event_log
        db_table = "referrals_event"

    def __str__(self) -> str:
        return f"{self.name} #{self.id}"


class EventReceipt(models.Model):
    """That an event with this client id from this participant was already taken."""

    pk = models.CompositePrimaryKey("participant_id", "client_event_id")
    participant_id = models.BigIntegerField()
    client_event_id = models.CharField(max_length=80)
    received_at = models.DateTimeField()
    batch_key = models.CharField(max_length=64, default="")

    class Meta:
        managed = False  # created by migration 0002_event_log
        db_table = "referrals_eventreceipt"

    def __str__(self) -> str:
        return f"{self.participant_id}:{self.client_event_id}"
