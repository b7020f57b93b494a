"""Derived tables: small tables every cockpit tile reads instead of the raw event log.

All of them are written only by `analytics.services.fold` (incrementally, one writer per
campaign) and `analytics.services.rebuild`. Their sizes grow with participants, minutes
or days, never with events. Definitions: METRICS.md. Day columns are days of the
campaign's time zone.

The per-participant row is the state; every other table (except the minute rollups and
the money columns) is a sum of a function of those rows, maintained by adding
(new row − old row) for each row a micro-batch changed. See docs/analytics.md.
"""

from django.contrib.postgres.fields import ArrayField
from django.db import models


class CampaignCounter(models.Model):
    """One row per campaign: running totals, and how far the fold has got."""

    campaign = models.OneToOneField(
        "campaigns.Campaign", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    # Every event written by a transaction with a 64-bit xid below fold_xid is folded, and so
    # is every event of the transactions listed in fold_xids (all ≥ fold_xid). See services.fold.
    fold_xid = models.BigIntegerField(default=0, db_default=0)
    fold_xids = ArrayField(models.BigIntegerField(), default=list)
    # No unfolded event has an id at or below this: the next fold scans the log from here
    # (BRIN on id). fold_marks = [[unix time, last event id], …] of recent folds, to move it.
    fold_id_from = models.BigIntegerField(default=0)
    fold_marks = models.JSONField(default=list)
    folded_at = models.DateTimeField(null=True)
    money_synced_at = models.DateTimeField(null=True)
    events = models.BigIntegerField(default=0, db_default=0)
    join_events = models.BigIntegerField(default=0, db_default=0)
    share_events = models.BigIntegerField(default=0, db_default=0)
    open_events = models.BigIntegerField(default=0, db_default=0)
    order_events = models.BigIntegerField(default=0, db_default=0)
    # Sums over participant rows.
    participants = models.BigIntegerField(default=0, db_default=0)
    joined = models.BigIntegerField(default=0, db_default=0)
    valid = models.BigIntegerField(default=0, db_default=0)
    referred_joined = models.BigIntegerField(default=0, db_default=0)
    referred_valid = models.BigIntegerField(default=0, db_default=0)
    parents = models.BigIntegerField(default=0, db_default=0)
    sharers = models.BigIntegerField(default=0, db_default=0)
    openers = models.BigIntegerField(default=0, db_default=0)
    funnel_join = models.BigIntegerField(default=0, db_default=0)
    funnel_valid = models.BigIntegerField(default=0, db_default=0)
    funnel_d7 = models.BigIntegerField(default=0, db_default=0)
    valid_invitees_h = models.BigIntegerField(default=0, db_default=0)

    class Meta:
        db_table = "analytics_counter"
        permissions = [("view_cockpit", "Can view the campaign cockpit and the analytics API")]

    def __str__(self) -> str:
        return f"counter of campaign {self.campaign_id}"


class MinuteRollup(models.Model):
    """Events per minute (occurred_at), channel (0 = none) and event name. The name "$valid"
    counts valid new users by the minute of valid_at, net of fraud voids (all channels, in 0)."""

    pk = models.CompositePrimaryKey("campaign_id", "minute", "channel_id", "name")
    campaign_id = models.IntegerField()
    minute = models.DateTimeField()
    channel_id = models.IntegerField()
    name = models.CharField(max_length=64)
    count = models.IntegerField()

    class Meta:
        db_table = "analytics_minute"
        # The burn-up reads one name over the whole campaign.
        indexes = [models.Index(fields=["campaign_id", "name", "minute"], name="an_minute_by_name")]

    def __str__(self) -> str:
        return f"{self._meta.db_table} {self.pk}"


class ParticipantStat(models.Model):
    """One participant in one campaign: milestones, tree position, sharing and activity."""

    pk = models.CompositePrimaryKey("campaign_id", "participant_id")
    campaign_id = models.IntegerField()
    participant_id = models.BigIntegerField()
    joined_at = models.DateTimeField(null=True)
    cohort_day = models.DateField(null=True)
    channel_id = models.IntegerField(null=True)
    referrer_id = models.BigIntegerField(null=True)
    referrer_cohort_day = models.DateField(null=True)
    referrer_channel_id = models.IntegerField(null=True)
    cycle_s = models.IntegerField(null=True, help_text="joined_at − the referrer's joined_at, seconds")
    depth = models.IntegerField(null=True)
    root_id = models.BigIntegerField(null=True)
    is_new = models.BooleanField(default=False)
    valid_at = models.DateTimeField(null=True)
    voided = models.BooleanField(default=False)
    first_open_at = models.DateTimeField(null=True)
    first_share_at = models.DateTimeField(null=True)
    shares = models.IntegerField(default=0, db_default=0)
    opens_generated = models.IntegerField(default=0, db_default=0)
    children = models.IntegerField(default=0, db_default=0)
    direct_valid = models.IntegerField(default=0, db_default=0)
    downstream_valid = models.IntegerField(default=0, db_default=0)
    # Joined participants in the subtree rooted here, this one included.
    subtree = models.IntegerField(default=1, db_default=1)
    # Bit n set: active (an event other than the join) on day n after joining; calendar days of
    # the campaign's zone / rolling 24 h periods. Offsets past 62 set bit 62.
    active_cal = models.BigIntegerField(default=0, db_default=0)
    active_roll = models.BigIntegerField(default=0, db_default=0)
    # Σ counted of the participant's orders (OrderStat): paid within H days of joining, net of refunds.
    ltv = models.DecimalField(max_digits=14, decimal_places=2, default=0, db_default=0)
    # The first open of this participant's share links (by anyone): the funnel's share → open time.
    first_link_open_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "analytics_participant"
        indexes = [
            models.Index(fields=["campaign_id", "referrer_id"], name="an_participant_referrer"),
            models.Index(fields=["campaign_id", "root_id"], name="an_participant_root"),
            models.Index(
                fields=["campaign_id", "-downstream_valid"],
                condition=models.Q(downstream_valid__gt=0),
                name="an_participant_downstream",
            ),
            models.Index(
                fields=["campaign_id", "-direct_valid", "-shares"],
                condition=models.Q(shares__gt=0) | models.Q(direct_valid__gt=0),
                name="an_participant_sharers",
            ),
            models.Index(
                fields=["campaign_id"], condition=models.Q(voided=True), name="an_participant_voided"
            ),
        ]

    def __str__(self) -> str:
        return f"{self._meta.db_table} {self.pk}"


class RetentionCount(models.Model):
    """Valid new users of cohort day d (basis 1 = calendar days, 2 = rolling 24 h): `classic` =
    active on day n (n = 0 holds the cohort size); `last_active` = whose last active day is n
    (31 = later than 30); `first_active` = whose first return is on day n. On-or-after and
    cumulative retention are suffix and prefix sums of the last two (one row per active day
    and two more per user, instead of 60)."""

    pk = models.CompositePrimaryKey("campaign_id", "cohort_day", "basis", "n")
    campaign_id = models.IntegerField()
    cohort_day = models.DateField()
    basis = models.SmallIntegerField()
    n = models.SmallIntegerField()
    classic = models.IntegerField(default=0, db_default=0)
    last_active = models.IntegerField(default=0, db_default=0)
    first_active = models.IntegerField(default=0, db_default=0)

    class Meta:
        db_table = "analytics_retention"

    def __str__(self) -> str:
        return f"{self._meta.db_table} {self.pk}"


class ViralCount(models.Model):
    """kind 1: per inviter cohort day (key = days since 1970-01-01); kind 2: per generation (key = depth)."""

    pk = models.CompositePrimaryKey("campaign_id", "kind", "key")
    campaign_id = models.IntegerField()
    kind = models.SmallIntegerField()
    key = models.IntegerField()
    members = models.IntegerField(default=0, db_default=0)
    valid = models.IntegerField(default=0, db_default=0)
    sharers = models.IntegerField(default=0, db_default=0)
    shares = models.BigIntegerField(default=0, db_default=0)
    valid_invitees_h = models.IntegerField(default=0, db_default=0)

    class Meta:
        db_table = "analytics_viral"

    def __str__(self) -> str:
        return f"{self._meta.db_table} {self.pk}"


class DurationHistogram(models.Model):
    """Counts per whole minute of a duration: 1 cycle time (child join − parent join),
    2 open → join, 3 join → valid, 4 a sharer's first share → the first open of their links
    (funnel rows)."""

    pk = models.CompositePrimaryKey("campaign_id", "metric", "minute")
    campaign_id = models.IntegerField()
    metric = models.SmallIntegerField()
    minute = models.IntegerField()
    count = models.IntegerField(default=0, db_default=0)

    class Meta:
        db_table = "analytics_duration"

    def __str__(self) -> str:
        return f"{self._meta.db_table} {self.pk}"


class Cascade(models.Model):
    """One referral tree (by root). s1/s2 = Σ subtree, Σ subtree² over non-root members, so
    structural virality ν = 2(n·s1 − s2) / (n(n−1))."""

    pk = models.CompositePrimaryKey("campaign_id", "root_id")
    campaign_id = models.IntegerField()
    root_id = models.BigIntegerField()
    size = models.IntegerField(default=0, db_default=0)
    valid = models.IntegerField(default=0, db_default=0)
    max_depth = models.IntegerField(default=0, db_default=0)
    s1 = models.BigIntegerField(default=0, db_default=0)
    s2 = models.BigIntegerField(default=0, db_default=0)

    class Meta:
        db_table = "analytics_cascade"
        indexes = [models.Index(fields=["campaign_id", "-size"], name="an_cascade_size")]

    def __str__(self) -> str:
        return f"{self._meta.db_table} {self.pk}"


class SharerHistogram(models.Model):
    """Sharer stats as an exact 2-D histogram: how many sharers have (shares, direct valid)."""

    pk = models.CompositePrimaryKey("campaign_id", "shares", "direct_valid")
    campaign_id = models.IntegerField()
    shares = models.IntegerField()
    direct_valid = models.IntegerField()
    sharers = models.IntegerField(default=0, db_default=0)

    class Meta:
        db_table = "analytics_sharer"

    def __str__(self) -> str:
        return f"{self._meta.db_table} {self.pk}"


class ChannelDay(models.Model):
    """Per channel (0 = none) and cohort day: joins, valid users, sharers, LTV (sums over
    participant rows)."""

    pk = models.CompositePrimaryKey("campaign_id", "day", "channel_id")
    campaign_id = models.IntegerField()
    day = models.DateField()
    channel_id = models.IntegerField()
    joins = models.IntegerField(default=0, db_default=0)
    valid = models.IntegerField(default=0, db_default=0)
    referred_valid = models.IntegerField(default=0, db_default=0)
    sharers = models.IntegerField(default=0, db_default=0)
    # Valid new users whom this channel's sharers invited (keyed by the inviter's channel).
    invited_valid = models.IntegerField(default=0, db_default=0)
    ltv = models.DecimalField(max_digits=14, decimal_places=2, default=0, db_default=0)

    class Meta:
        db_table = "analytics_channel_day"

    def __str__(self) -> str:
        return f"{self._meta.db_table} {self.pk}"


class OrderStat(models.Model):
    """One order of the campaign as the log tells it (order_paid / order_refunded events):
    who paid, how much, when, whether it was refunded, and what it adds to the buyer's LTV
    now (`counted`: the amount while it is paid within H days of joining and not refunded,
    else 0). A refund folded before its order_paid is remembered: the order then counts 0.
    The paid event with the earliest (occurred_at, id) wins when the backend re-sends one."""

    pk = models.CompositePrimaryKey("campaign_id", "order_id")
    campaign_id = models.IntegerField()
    order_id = models.CharField(max_length=80)
    participant_id = models.BigIntegerField(null=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True)
    paid_at = models.DateTimeField(null=True)
    paid_event_id = models.BigIntegerField(null=True)
    refunded = models.BooleanField(default=False, db_default=False)
    counted = models.DecimalField(max_digits=14, decimal_places=2, default=0, db_default=0)

    class Meta:
        db_table = "analytics_order"

    def __str__(self) -> str:
        return f"{self._meta.db_table} {self.pk}"


class RewardDay(models.Model):
    """Channel cost per day: the reward ledger summed per grant day, channel (of the invitee
    the reward is for; else of the beneficiary; 0 = none) and status. Recomputed whole from
    the ledger (it is not in the event log) at most once a minute per campaign."""

    pk = models.CompositePrimaryKey("campaign_id", "day", "channel_id", "status")
    campaign_id = models.IntegerField()
    day = models.DateField()
    channel_id = models.IntegerField()
    status = models.CharField(max_length=12)
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=0, db_default=0)
    count = models.IntegerField(default=0, db_default=0)

    class Meta:
        db_table = "analytics_reward_day"

    def __str__(self) -> str:
        return f"{self._meta.db_table} {self.pk}"


class ApiToken(models.Model):
    """A staff member's token for BI tools reading /api/v1/analytics/ ("Authorization: Token <key>").

    Only the SHA-256 of the key is stored; the key is shown once, when issued. The token
    acts as its user: it reads only while the user is active and holds analytics.view_cockpit."""

    user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="analytics_tokens")
    name = models.CharField(max_length=80, help_text="What uses it, e.g. Metabase.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        db_table = "analytics_api_token"

    def __str__(self) -> str:
        return f"{self.name} ({self.user})"
