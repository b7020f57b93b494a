"""The fold: new events of a campaign into its derived tables, incrementally and exactly once.

Which events are new (the watermark)
------------------------------------
Event ids come from a sequence and are taken before their transaction commits, so ids
commit out of order: "fold everything above the last id" would skip an event whose
transaction commits after a later id was folded. We use transaction ids instead; all
rows of one transaction (its subtransactions included) become visible at one instant,
its commit. The watermark is (X, F): X = `pg_snapshot_xmin(pg_current_snapshot())` at
the start of the last fold, the oldest transaction then running, so every transaction
below X had finished and its events were visible to that fold; F = the transactions at
or above X whose events that fold (or an earlier one) already took. A fold takes every
visible event whose writing transaction is ≥ X and not in F, then stores the new X and
F (trimmed to ≥ new X) in the same transaction as the derived rows. So every event is
folded exactly once: a crash rolls the watermark back with the rows, a re-run finds
nothing new, and an event whose transaction was still open is taken by a later fold. A
long transaction elsewhere only makes F longer; it never delays other events. (A row's
64-bit xid is our own xid minus `age(xmin)`; frozen rows are far below any X.)

Where to look: the log is partitioned by `received_at`, which a replaying simulator
back-dates, so the scan is bounded by id instead (a BRIN index on id, created by this
app's migration 0003; it costs the ingest path next to nothing). Ids are taken inside
the writing transaction, so every unfolded event has an id above the sequence's value at
the start of the oldest transaction that was open in this database at the last fold.
Each fold records (time, sequence value) in `fold_marks` and moves `fold_id_from` to the
value of the newest mark older than that oldest open transaction.

One writer per campaign: a transaction-level advisory lock (ADVISORY_NS, campaign id).
A second writer does not wait; it returns at once and the next beat tick folds.

What is folded (see the models)
-------------------------------
Minute rollups and event counters are added from the batch. The per-participant row is
the state: it is recomputed for every participant the batch touches (membership, valid_at
and fraud voids are read from the referral and fraud tables, which the same transactions
wrote), and counts are added to it. Inviters' direct / downstream valid invitees and
subtree sizes move by walking up the tree level by level. Every other table is a sum over
participant rows of some function of the row, kept by adding f(new row) − f(old row) for
each row that changed; so it is equal to recomputing it from the rows, whichever batches
the events came in.
"""

import time
from datetime import UTC, datetime, timedelta

from django.db import DatabaseError, connection, transaction

from campaigns.models import Campaign

from ..models import CampaignCounter

ADVISORY_NS = 0x616E61  # "ana"
SCAN_MARGIN = timedelta(milliseconds=200)  # clock_timestamp() vs xact_start: one clock
HORIZON_DAYS = 7  # METRICS.md: K-factor attribution horizon H
LTV_DAYS = 30  # order value counted within this many days of joining
MAX_BIT = 62
RETENTION_DAYS = 30
MONEY_EVERY = timedelta(seconds=60)
# Minutes are binned from a UTC origin: date_bin is the same as date_trunc('minute') in UTC,
# without date_trunc's time-zone work per row (half the cost of a rebuild's rollups).
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
DERIVED_TABLES = [
    "analytics_minute",
    "analytics_participant",
    "analytics_retention",
    "analytics_viral",
    "analytics_duration",
    "analytics_cascade",
    "analytics_sharer",
    "analytics_channel_day",
    "analytics_reward_day",
    "analytics_order",
]


def _params(campaign: Campaign) -> dict:
    return {
        "c": campaign.pk,
        "tz": campaign.time_zone,
        "start": campaign.starts_at,
        "end": campaign.ends_at,
        "w": timedelta(hours=campaign.attribution_window_hours),
        "h_s": HORIZON_DAYS * 86400,
        "ltv": timedelta(days=LTV_DAYS),
        "epoch": EPOCH,
    }


# Flags of a participant row, as SQL over alias X. `counted` = a valid new user (METRICS.md).
COUNTED = (
    "({x}.joined_at >= %(start)s AND {x}.joined_at < %(end)s AND {x}.is_new "
    "AND {x}.valid_at IS NOT NULL AND NOT {x}.voided)"
)


def _flags(x: str) -> str:
    counted = COUNTED.format(x=x)
    f_join = (
        f"({x}.first_open_at IS NOT NULL AND {x}.joined_at >= {x}.first_open_at "
        f"AND {x}.joined_at <= {x}.first_open_at + %(w)s)"
    )
    f_valid = f"({f_join} AND {counted} AND {x}.valid_at <= {x}.first_open_at + %(w)s)"
    flags = {
        "joined": f"{x}.joined_at IS NOT NULL",
        "counted": counted,
        "f_open": f"{x}.first_open_at IS NOT NULL",
        "f_join": f_join,
        "f_valid": f_valid,
        "f_d7": f"{f_valid} AND ({x}.active_cal >> 7) & 1 = 1",
        "sharer": f"{x}.shares > 0",
        "inv_h": f"{counted} AND {x}.referrer_id IS NOT NULL AND {x}.cycle_s <= %(h_s)s",
    }
    # coalesce: a participant who never joined has NULL times, and is simply not at that step.
    return ", ".join(f"coalesce(({expr}), false)::int AS {name}" for name, expr in flags.items())


def fold_campaign(*, campaign_id: int, wait: bool = False, full: bool = False) -> dict | None:
    """Fold the campaign's new events. One transaction; idempotent (see the module doc).

    Returns counts of what was folded, or None when another writer holds the campaign
    (with wait=False) or the campaign no longer exists. `full` scans the whole log for
    events not yet folded instead of starting at `fold_id_from`, and inserts instead of
    upserting: only for tables emptied under the same lock (`analytics_rebuild`)."""
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cur:
        if wait:
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ADVISORY_NS, campaign_id])
        else:
            cur.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [ADVISORY_NS, campaign_id])
            if not cur.fetchone()[0]:
                return None
        # Each statement here takes milliseconds; JIT compiling one (triggered by a cost estimate
        # on never-analyzed work tables) takes a hundred. Off for this transaction.
        cur.execute("SET LOCAL jit = off")
        if full:
            # A rebuild reads the whole log once: hash aggregates over every participant, and
            # work tables of millions of rows, which the default 8 MB of temp_buffers sends
            # through the file system. temp_buffers can only be set before the session's first
            # temporary table: a session that had one keeps its size.
            cur.execute("SET LOCAL work_mem = '256MB'")
            try:
                with transaction.atomic():
                    cur.execute("SET LOCAL temp_buffers = '2GB'")
            except DatabaseError:
                pass
        else:
            # A batch's participants are looked up by index in tables that are hot in memory; at
            # the default random_page_cost (4, for spinning disks) the planner read all of a
            # 1M-row referrals table instead of 20k index probes (0.55 s against 0.26 s a batch).
            cur.execute("SET LOCAL random_page_cost = 1.1")
        _drop_work_tables(cur)
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        if campaign is None:  # deleted since the caller listed it: its rows went with it
            return None
        counter, _ = CampaignCounter.objects.get_or_create(campaign_id=campaign_id)
        counter = CampaignCounter.objects.select_for_update().get(pk=campaign_id)
        p = _params(campaign)
        cur.execute(
            "SELECT pg_current_xact_id()::text::bigint,"
            " pg_snapshot_xmin(pg_current_snapshot())::text::bigint,"
            " now(), (SELECT min(xact_start) FROM pg_stat_activity WHERE datname = current_database()"
            "         AND xact_start IS NOT NULL AND pid <> pg_backend_pid()),"
            " (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END"
            "  FROM referrals_event_id_seq)"
        )
        me, horizon, now, oldest, last_id = cur.fetchone()
        # The mark's time is read after the sequence: a transaction that starts later takes larger ids.
        cur.execute("SELECT clock_timestamp()")
        marked_at = cur.fetchone()[0]
        first = counter.fold_xid == 0
        p.update(
            timing={},
            t0=started,
            me=me,
            lo=counter.fold_xid if not first else -(2**62),
            done=counter.fold_xids,
            id_from=counter.fold_id_from if not (full or first) else 0,
            full=full,
        )
        events = _load_batch(cur, p)
        tick(p, "load")
        cur.execute(
            "SELECT coalesce(array_agg(x ORDER BY x), '{}') FROM "
            "(SELECT unnest(%(done)s::bigint[]) AS x UNION SELECT DISTINCT xid FROM _ev) t WHERE x >= %(hi)s",
            {**p, "hi": horizon},
        )
        counter.fold_xids = cur.fetchone()[0]
        _move_id_from(counter, now=now, oldest=oldest, marked_at=marked_at, last_id=last_id)
        touched = 0
        if events:
            _rollups(cur, p)
            tick(p, "rollups")
        touched = _participants(cur, p, bool(events))
        tick(p, "diffs")
        counter.fold_xid = horizon
        counter.folded_at = now
        counter.save(update_fields=["fold_xid", "fold_xids", "fold_id_from", "fold_marks", "folded_at"])
        money = False
        if counter.money_synced_at is None or now - counter.money_synced_at >= MONEY_EVERY or full:
            money_sync(cur, p)
            CampaignCounter.objects.filter(pk=campaign_id).update(money_synced_at=now)
            money = True
    return {
        "campaign_id": campaign_id,
        "events": events,
        "participants": touched,
        "money": money,
        "seconds": round(time.monotonic() - started, 3),
        "timing": p["timing"],  # seconds since the start, after each step
    }


def tick(p: dict, label: str) -> None:
    """Seconds since the fold started, per step, returned in the fold's result."""
    p["timing"][label] = round(time.monotonic() - p["t0"], 3)


def _move_id_from(counter: CampaignCounter, *, now, oldest, marked_at, last_id: int) -> None:
    """Keep the marks still needed; the newest mark older than every open transaction bounds the scan."""
    limit = (min(now, oldest or now) - SCAN_MARGIN).timestamp()
    marks = [*counter.fold_marks, [marked_at.timestamp(), last_id]]
    older = [i for i, (at, _) in enumerate(marks) if at <= limit]
    if older:
        keep = older[-1]
        counter.fold_id_from = max(counter.fold_id_from, marks[keep][1])
        marks = marks[keep:]
    # Many marks pile up only behind a long transaction; the oldest one is the one that matters then.
    counter.fold_marks = marks if len(marks) <= 200 else [marks[0], *marks[-199:]]


# Temporary work tables of one fold. All are ON COMMIT DROP; a fold drops them first, so two
# folds in one transaction (e.g. fold_live_campaigns inside an outer atomic block) work.
WORK_TABLES = [
    "_ev", "_p", "_v", "_r", "_old", "_agg", "_og", "_n", "_c",
    "_anc", "_step", "_next", "_up", "_upsum", "_d", "_ret", "_ord", "_ltv",
]  # fmt: skip
# Columns of a participant row, in table order (the work tables are made LIKE the table).
COLUMNS = [
    "campaign_id", "participant_id", "joined_at", "cohort_day", "channel_id", "referrer_id",
    "referrer_cohort_day", "cycle_s", "depth", "root_id", "is_new", "valid_at", "voided", "first_open_at",
    "first_share_at", "shares", "opens_generated", "children", "direct_valid", "downstream_valid", "subtree",
    "active_cal", "active_roll", "ltv", "referrer_channel_id", "first_link_open_at",
]  # fmt: skip
# What each diff table reads of a row (services/diffs.py): when a changed row's columns in
# one of these lists are all unchanged, f(new) − f(old) is zero for those tables and the row
# is left out of them. `core`: minute $valid, viral, duration, cascade, sharer, channel day.
CORE_COLUMNS = [
    "joined_at", "is_new", "valid_at", "voided", "referrer_id", "cohort_day", "channel_id",
    "referrer_cohort_day", "referrer_channel_id", "cycle_s", "depth", "root_id", "first_open_at", "shares",
    "direct_valid", "subtree", "ltv", "first_share_at", "first_link_open_at",
]  # fmt: skip
RETENTION_COLUMNS = ["joined_at", "is_new", "valid_at", "voided", "cohort_day", "active_cal", "active_roll"]
# Every column that can differ between a touched row before and after the batch, the most
# often changed first (the comparison stops at the first difference). children, direct_valid,
# downstream_valid and subtree are left out: the walk up moves them later (see _walk_up).
COMPARED = [
    "active_cal", "active_roll", "opens_generated", "shares", "first_open_at", "first_share_at",
    "first_link_open_at", "ltv",
    "joined_at", "valid_at", "voided", "is_new", "cohort_day", "channel_id", "referrer_id",
    "referrer_cohort_day", "referrer_channel_id", "cycle_s", "depth", "root_id",
]  # fmt: skip
WALKED = ["children", "direct_valid", "downstream_valid", "subtree"]
assert {"campaign_id", "participant_id", *COMPARED, *WALKED} == set(COLUMNS)


def _drop_work_tables(cur) -> None:
    cur.execute("DROP TABLE IF EXISTS " + ", ".join(f"pg_temp.{t}" for t in WORK_TABLES))


def _load_batch(cur, p: dict) -> int:
    scan = "AND e.id > %(id_from)s" if p["id_from"] else ""
    # Only what the fold reads: the order amount instead of the whole properties document.
    cur.execute(
        f"""
        CREATE TEMP TABLE _ev ON COMMIT DROP AS
        SELECT * FROM (
            SELECT e.id, e.occurred_at, e.participant_id, e.name, e.channel_id, e.inviter_id,
                   CASE WHEN e.name = 'order_paid' THEN e.properties ->> 'amount' END AS amount,
                   CASE WHEN e.name IN ('order_paid', 'order_refunded')
                        THEN left(e.properties ->> 'order_id', 60) END AS order_id,
                   %(me)s - age(e.xmin) AS xid
            FROM referrals_event e WHERE e.campaign_id = %(c)s {scan}
        ) t WHERE xid >= %(lo)s AND xid NOT IN (SELECT unnest(%(done)s::bigint[]))
        """,  # noqa: S608 (fixed SQL text; values go as parameters)
        p,
    )
    # Work tables are analyzed on their join key only (see _analyze_keys); the planner sizes
    # a never-analyzed table by its pages, but without the key's statistics it takes a
    # one-to-one join for a many-to-many one and picks sort + merge joins.
    count = cur.rowcount
    cur.execute("ANALYZE _ev (participant_id)")
    return count


def _rollups(cur, p: dict) -> None:
    # A rebuild writes into tables it emptied under the writer lock: plain inserts (an upsert's
    # speculative insertion costs more per row, and a rebuild writes millions).
    upsert = (
        ""
        if p["full"]
        else "ON CONFLICT (campaign_id, minute, channel_id, name) "
        "DO UPDATE SET count = analytics_minute.count + excluded.count"
    )
    cur.execute(
        f"""
        INSERT INTO analytics_minute (campaign_id, minute, channel_id, name, count)
        SELECT %(c)s, date_bin('1 minute', occurred_at, %(epoch)s), coalesce(channel_id, 0), name, count(*)
        FROM _ev GROUP BY 2, 3, 4
        {upsert}
        """,  # noqa: S608 (fixed SQL text; values go as parameters)
        p,
    )
    cur.execute(
        """
        UPDATE analytics_counter k SET
            events = k.events + t.n, join_events = k.join_events + t.joins,
            share_events = k.share_events + t.shares, open_events = k.open_events + t.opens,
            order_events = k.order_events + t.orders
        FROM (SELECT count(*) n, count(*) FILTER (WHERE name = 'join') joins,
                     count(*) FILTER (WHERE name = 'share') shares,
                     count(*) FILTER (WHERE name = 'open') opens,
                     count(*) FILTER (WHERE name = 'order_paid') orders FROM _ev) t
        WHERE k.campaign_id = %(c)s
        """,
        p,
    )


def _participants(cur, p: dict, has_events: bool) -> int:
    """Recompute the touched participant rows and their ancestors in work tables, write the
    rows that changed once, apply the diffs. Returns the number of rows recomputed."""
    cur.execute("CREATE TEMP TABLE _p (participant_id bigint PRIMARY KEY) ON COMMIT DROP")
    if has_events:
        cur.execute(
            "INSERT INTO _p SELECT participant_id FROM _ev WHERE participant_id IS NOT NULL "
            "UNION SELECT inviter_id FROM _ev WHERE name = 'open' AND inviter_id IS NOT NULL"
        )
        # An order's buyer as an earlier fold recorded it: a refund (or an earlier re-sent
        # order_paid) moves that participant's LTV even when the event names someone else.
        cur.execute(
            "INSERT INTO _p SELECT o.participant_id FROM analytics_order o WHERE o.campaign_id = %(c)s "
            "AND o.participant_id IS NOT NULL "
            "AND o.order_id IN (SELECT order_id FROM _ev WHERE order_id <> '') ON CONFLICT DO NOTHING",
            p,
        )
    tick(p, "batch_participants")
    # Fraud voids are not in the log: the confirmed sharers of the campaign and their direct
    # invitees. Rows whose flag disagrees are recomputed like touched ones.
    cur.execute(
        """
        CREATE TEMP TABLE _v ON COMMIT DROP AS
        WITH f AS (SELECT DISTINCT participant_id FROM referrals_fraudcase
                   WHERE campaign_id = %(c)s AND state = 'confirmed')
        SELECT participant_id FROM f
        UNION SELECT r.invitee_id FROM referrals_referral r JOIN f ON r.inviter_id = f.participant_id
        WHERE r.campaign_id = %(c)s
        """,
        p,
    )
    cur.execute(
        """
        INSERT INTO _p
        SELECT a.participant_id FROM analytics_participant a JOIN _v USING (participant_id)
        WHERE a.campaign_id = %(c)s AND NOT a.voided
        UNION
        SELECT a.participant_id FROM analytics_participant a LEFT JOIN _v v USING (participant_id)
        WHERE a.campaign_id = %(c)s AND a.voided AND v.participant_id IS NULL
        ON CONFLICT DO NOTHING
        """,
        p,
    )
    cur.execute("SELECT count(*) FROM _p")
    if not cur.fetchone()[0]:
        return 0
    cur.execute("ANALYZE _p")  # one narrow column: cheap, and the joins below start from it
    tick(p, "touched")
    _memberships(cur, p)
    tick(p, "memberships")
    cur.execute(
        "CREATE TEMP TABLE _old ON COMMIT DROP AS SELECT a.* FROM analytics_participant a "
        "JOIN _p USING (participant_id) WHERE a.campaign_id = %(c)s",
        p,
    )
    tick(p, "old_rows")
    _aggregates(cur, p, has_events)
    _orders(cur, p, has_events)
    _analyze_keys(cur, "_r", "_old", "_agg", "_og")
    _recompute(cur, p)
    _analyze_keys(cur, "_n")
    tick(p, "base_rows")
    _pairs(cur, p)
    _analyze_keys(cur, "_c")
    tick(p, "pairs")
    _walk_up(cur, p)
    tick(p, "walk_up")
    _changes(cur, p)
    tick(p, "new_rows")
    _write(cur, p)
    tick(p, "write")
    from .diffs import apply_diffs

    apply_diffs(cur, p)
    cur.execute("SELECT count(*) FROM _n")
    return cur.fetchone()[0]


def _analyze_keys(cur, *tables: str) -> None:
    """Statistics of the participant_id column only (one per row in these tables): a few
    milliseconds, where a whole-row ANALYZE of the wide work tables took a hundred."""
    cur.execute("; ".join(f"ANALYZE {t} (participant_id)" for t in tables))


def _memberships(cur, p: dict) -> None:
    """`_r`: each touched participant's membership (and inviter's), read once from the referrals.

    A member of another campaign before this one started is not a new user. A batch probes
    that by index per participant (as a NOT EXISTS it was planned as a hash of every other
    campaign's referrals); a rebuild, touching everyone, takes the hash (an index probe for
    each of 1.8M participants took 9 s)."""
    earlier = (
        "LEFT JOIN (SELECT DISTINCT invitee_id AS participant_id, 1 AS member FROM referrals_referral "
        "WHERE campaign_id <> %(c)s AND joined_at < %(start)s) earlier USING (participant_id)"
        if p["full"]
        else "LEFT JOIN LATERAL (SELECT 1 AS member FROM referrals_referral x "
        "WHERE x.invitee_id = p.participant_id AND x.campaign_id <> %(c)s AND x.joined_at < %(start)s "
        "LIMIT 1) earlier ON true"
    )
    cur.execute(
        f"""
        CREATE TEMP TABLE _r ON COMMIT DROP AS
        SELECT p.participant_id, r.joined_at, (r.joined_at AT TIME ZONE %(tz)s)::date AS join_day,
            r.channel_id, r.inviter_id, r.depth, r.root_id, r.valid_at,
            (r.id IS NOT NULL AND earlier.member IS NULL) AS is_new,
            ir.joined_at AS inviter_joined_at, ir.channel_id AS inviter_channel_id
        FROM _p p
        LEFT JOIN referrals_referral r ON r.campaign_id = %(c)s AND r.invitee_id = p.participant_id
        LEFT JOIN referrals_referral ir ON ir.campaign_id = %(c)s AND ir.invitee_id = r.inviter_id
        {earlier}
        """,  # noqa: S608 (fixed SQL text; values go as parameters)
        p,
    )


AMOUNT_RE = r"^-?[0-9]{1,10}(\.[0-9]{1,4})?$"


def _aggregates(cur, p: dict, has_events: bool) -> None:
    """Per participant of the batch: shares, first open / share, activity bits; per inviter: opens."""
    if not has_events:
        cur.execute(
            "CREATE TEMP TABLE _agg (participant_id bigint, shares int, first_share_at timestamptz, "
            "first_open_at timestamptz, active_cal bigint, active_roll bigint) ON COMMIT DROP"
        )
        cur.execute(
            "CREATE TEMP TABLE _og (participant_id bigint, n int, first_at timestamptz) ON COMMIT DROP"
        )
        return
    # The local dates once per event (OFFSET 0 keeps the subquery from being flattened into
    # the aggregates, which would convert each timestamp several times). Rolling day n =
    # whole 24 h periods since joining: timestamptz − timestamptz is an interval of days and
    # hours < 24 (justified), so for t ≥ joined_at its day field is ⌊(t − joined_at) / 24 h⌋,
    # the same number as floor(extract(epoch …) / 86400) without numeric arithmetic.
    cur.execute(
        f"""
        CREATE TEMP TABLE _agg ON COMMIT DROP AS
        SELECT participant_id,
            count(*) FILTER (WHERE name = 'share') AS shares,
            min(occurred_at) FILTER (WHERE name = 'share') AS first_share_at,
            min(occurred_at) FILTER (WHERE name = 'open') AS first_open_at,
            coalesce(bit_or(1::bigint << least({MAX_BIT}, day - join_day))
              FILTER (WHERE name <> 'join' AND day >= join_day), 0) AS active_cal,
            coalesce(bit_or(1::bigint << least({MAX_BIT}, date_part('day', occurred_at - joined_at)::int))
              FILTER (WHERE name <> 'join' AND occurred_at >= joined_at), 0) AS active_roll
        FROM (
            SELECT e.participant_id, e.name, e.occurred_at,
                   (e.occurred_at AT TIME ZONE %(tz)s)::date AS day, r.joined_at, r.join_day
            FROM _ev e JOIN _r r ON r.participant_id = e.participant_id
            OFFSET 0
        ) e
        GROUP BY participant_id
        """,  # noqa: S608 (fixed SQL text; values go as parameters)
        p,
    )
    cur.execute(
        "CREATE TEMP TABLE _og ON COMMIT DROP AS SELECT inviter_id AS participant_id, count(*) AS n, "
        "min(occurred_at) AS first_at FROM _ev WHERE name = 'open' AND inviter_id IS NOT NULL GROUP BY 1"
    )
    tick(p, "activity")


def _orders(cur, p: dict, has_events: bool) -> None:
    """The batch's orders merged into `analytics_order`, and `_ltv`: what each buyer's LTV
    moves by (an order's new `counted` minus its old one, see OrderStat). The buyers are in
    `_r` (the batch's participants, and the recorded buyers of the batch's orders)."""
    if not has_events:
        cur.execute("CREATE TEMP TABLE _ltv (participant_id bigint, d numeric) ON COMMIT DROP")
        return
    cur.execute(
        f"""
        CREATE TEMP TABLE _ord ON COMMIT DROP AS
        WITH paid AS (
            SELECT DISTINCT ON (order_id) order_id, participant_id, occurred_at, id,
                   CASE WHEN amount ~ '{AMOUNT_RE}' THEN amount::numeric(14, 2) END AS amount
            FROM _ev WHERE name = 'order_paid' AND order_id <> '' ORDER BY order_id, occurred_at, id
        ), batch AS (
            SELECT order_id, paid.participant_id, paid.amount, paid.occurred_at AS paid_at,
                   paid.id AS paid_event_id, refund.order_id IS NOT NULL AS refunded
            FROM paid FULL JOIN (SELECT DISTINCT order_id FROM _ev WHERE name = 'order_refunded'
                                 AND order_id <> '') refund USING (order_id)
        ), merged AS (
            SELECT b.order_id, o.participant_id AS old_pid, coalesce(o.counted, 0) AS old_counted,
                   coalesce(o.refunded, false) OR b.refunded AS refunded, w.*
            FROM batch b LEFT JOIN analytics_order o ON o.campaign_id = %(c)s AND o.order_id = b.order_id
            CROSS JOIN LATERAL (
                SELECT b.participant_id, b.amount, b.paid_at, b.paid_event_id
                WHERE b.paid_at IS NOT NULL AND (o.paid_at IS NULL
                      OR (b.paid_at, b.paid_event_id) < (o.paid_at, o.paid_event_id))
                UNION ALL
                SELECT o.participant_id, o.amount, o.paid_at, o.paid_event_id
                WHERE NOT (b.paid_at IS NOT NULL AND (o.paid_at IS NULL
                      OR (b.paid_at, b.paid_event_id) < (o.paid_at, o.paid_event_id)))
            ) w
        )
        SELECT m.*, CASE WHEN NOT m.refunded AND m.amount IS NOT NULL AND m.paid_at >= r.joined_at
                          AND m.paid_at < r.joined_at + %(ltv)s THEN m.amount ELSE 0 END AS counted
        FROM merged m LEFT JOIN _r r ON r.participant_id = m.participant_id
        """,  # noqa: S608 (fixed SQL text; values go as parameters)
        p,
    )
    cur.execute(
        """
        CREATE TEMP TABLE _ltv ON COMMIT DROP AS
        SELECT participant_id, sum(d) AS d FROM (
            SELECT participant_id, counted AS d FROM _ord WHERE participant_id IS NOT NULL
            UNION ALL SELECT old_pid, -old_counted FROM _ord WHERE old_pid IS NOT NULL
        ) t GROUP BY 1 HAVING sum(d) <> 0
        """
    )
    cur.execute(
        """
        INSERT INTO analytics_order (campaign_id, order_id, participant_id, amount, paid_at, paid_event_id,
                                     refunded, counted)
        SELECT %(c)s, order_id, participant_id, amount, paid_at, paid_event_id, refunded, counted FROM _ord
        ON CONFLICT (campaign_id, order_id) DO UPDATE SET participant_id = excluded.participant_id,
            amount = excluded.amount, paid_at = excluded.paid_at, paid_event_id = excluded.paid_event_id,
            refunded = excluded.refunded, counted = excluded.counted
        """,
        p,
    )
    tick(p, "orders")


def _recompute(cur, p: dict) -> None:
    """`_n`: each touched row as it is after the batch, before the walk up the tree. Membership,
    validity and voids are read again; counts, firsts, activity bits and LTV are the old row's
    plus the batch's (a new row starts from the column defaults). The casts are the ones an
    insert into the table makes; LTV moves by what the batch's orders change (`_ltv`)."""
    cur.execute("CREATE TEMP TABLE _n (LIKE analytics_participant) ON COMMIT DROP")
    cur.execute(
        f"""
        INSERT INTO _n ({", ".join(COLUMNS)})
        SELECT %(c)s, r.participant_id, r.joined_at, r.join_day, r.channel_id,
            r.inviter_id, (r.inviter_joined_at AT TIME ZONE %(tz)s)::date,
            extract(epoch FROM r.joined_at - r.inviter_joined_at)::int, r.depth, r.root_id, r.is_new,
            r.valid_at, v.participant_id IS NOT NULL,
            least(o.first_open_at, g.first_open_at), least(o.first_share_at, g.first_share_at),
            coalesce(o.shares, 0) + coalesce(g.shares, 0), coalesce(o.opens_generated, 0) + coalesce(og.n, 0),
            coalesce(o.children, 0), coalesce(o.direct_valid, 0), coalesce(o.downstream_valid, 0),
            coalesce(o.subtree, 1),
            coalesce(o.active_cal, 0) | coalesce(g.active_cal, 0),
            coalesce(o.active_roll, 0) | coalesce(g.active_roll, 0),
            coalesce(o.ltv, 0) + coalesce(l.d, 0),
            r.inviter_channel_id, least(o.first_link_open_at, og.first_at)
        FROM _r r
        LEFT JOIN _agg g ON g.participant_id = r.participant_id
        LEFT JOIN _og og ON og.participant_id = r.participant_id
        LEFT JOIN _ltv l ON l.participant_id = r.participant_id
        LEFT JOIN _v v ON v.participant_id = r.participant_id
        LEFT JOIN _old o ON o.participant_id = r.participant_id
        """,  # noqa: S608 (fixed SQL text; values go as parameters)
        p,
    )


def _row(x: str, columns: list[str]) -> str:
    return "ROW(" + ", ".join(f"{x}.{c}" for c in columns) + ")"


def _pairs(cur, p: dict) -> None:
    """`_c`: per touched row, whether the batch changed it (new row, or any column differs from
    the old row; the four counts the walk up moves are still the old ones here), whether the
    columns the core / retention diffs read changed, and its change of counted / joined, which
    the walk up carries to the inviters."""
    differs = " OR ".join(f"n.{c} IS DISTINCT FROM o.{c}" for c in COMPARED)
    core = f"{_row('n', CORE_COLUMNS)} IS DISTINCT FROM {_row('o', CORE_COLUMNS)}"
    ret = f"{_row('n', RETENTION_COLUMNS)} IS DISTINCT FROM {_row('o', RETENTION_COLUMNS)}"
    counted_new, counted_old = COUNTED.format(x="n"), COUNTED.format(x="o")
    cur.execute(
        f"""
        CREATE TEMP TABLE _c ON COMMIT DROP AS
        SELECT n.participant_id, n.referrer_id, o.participant_id IS NULL AS fresh,
               (o.participant_id IS NULL OR {differs}) AS changed,
               (o.participant_id IS NULL OR {core}) AS core, (o.participant_id IS NULL OR {ret}) AS ret,
               ({counted_new})::int - coalesce(({counted_old})::int, 0) AS dv,
               (n.joined_at IS NOT NULL)::int - (o.joined_at IS NOT NULL)::int AS dj
        FROM _n n LEFT JOIN _old o ON o.participant_id = n.participant_id
        """,  # noqa: S608 (fixed SQL text; values go as parameters)
        p,
    )


def _walk_up(cur, p: dict) -> None:
    """Move inviters' counts by the changes of their descendants, one tree level per statement.

    Ancestors outside the batch are read once into `_anc` (their old rows); a level's
    inviters come from `_n` for touched rows and from `_anc` for the others. Ancestors
    without a row are not created. The deltas are then added to `_n` (ancestors included),
    and a row whose counts moved is marked changed in `_c`."""
    cur.execute(
        "CREATE TEMP TABLE _step ON COMMIT DROP AS SELECT referrer_id AS pid, sum(dv) AS dv, sum(dj) AS dj "
        "FROM _c WHERE referrer_id IS NOT NULL GROUP BY referrer_id"
    )
    cur.execute("DELETE FROM _step WHERE dv = 0 AND dj = 0")
    cur.execute(
        "CREATE TEMP TABLE _up ON COMMIT DROP AS SELECT pid, dv AS d_direct, dj AS d_children, "
        "dv AS d_down, dj AS d_sub FROM _step"
    )
    cur.execute("CREATE TEMP TABLE _anc (LIKE analytics_participant) ON COMMIT DROP")
    while True:
        cur.execute(
            """
            INSERT INTO _anc SELECT a.* FROM _step s
            JOIN analytics_participant a ON a.campaign_id = %(c)s AND a.participant_id = s.pid
            WHERE NOT EXISTS (SELECT 1 FROM _p WHERE _p.participant_id = s.pid)
              AND NOT EXISTS (SELECT 1 FROM _anc x WHERE x.participant_id = s.pid)
            """,
            p,
        )
        cur.execute(
            """
            CREATE TEMP TABLE _next ON COMMIT DROP AS
            SELECT a.referrer_id AS pid, sum(s.dv) AS dv, sum(s.dj) AS dj
            FROM _step s
            JOIN (SELECT participant_id, referrer_id FROM _n
                  UNION ALL SELECT participant_id, referrer_id FROM _anc) a ON a.participant_id = s.pid
            WHERE a.referrer_id IS NOT NULL GROUP BY a.referrer_id
            """
        )
        if not cur.rowcount:
            cur.execute("DROP TABLE _next")
            break
        cur.execute(
            "INSERT INTO _up (pid, d_direct, d_children, d_down, d_sub) SELECT pid, 0, 0, dv, dj FROM _next"
        )
        cur.execute("DROP TABLE _step")
        cur.execute("ALTER TABLE _next RENAME TO _step")
    cur.execute(
        "CREATE TEMP TABLE _upsum ON COMMIT DROP AS SELECT pid, sum(d_direct) d_direct, "
        "sum(d_children) d_children, sum(d_down) d_down, sum(d_sub) d_sub FROM _up GROUP BY pid"
    )
    cur.execute("INSERT INTO _old SELECT * FROM _anc")
    cur.execute("INSERT INTO _n SELECT * FROM _anc")
    cur.execute(
        """
        UPDATE _n SET direct_valid = _n.direct_valid + u.d_direct, children = _n.children + u.d_children,
            downstream_valid = _n.downstream_valid + u.d_down, subtree = _n.subtree + u.d_sub
        FROM _upsum u WHERE _n.participant_id = u.pid
        """
    )
    # direct_valid and subtree are read by the core diffs; children only by the counter.
    moved = "(u.d_direct <> 0 OR u.d_children <> 0 OR u.d_down <> 0 OR u.d_sub <> 0)"
    cur.execute(
        f"""
        UPDATE _c SET changed = true, core = _c.core OR u.d_direct <> 0 OR u.d_sub <> 0
        FROM _upsum u WHERE _c.participant_id = u.pid AND {moved}
        """  # noqa: S608 (fixed SQL text)
    )
    cur.execute(
        f"""
        INSERT INTO _c (participant_id, fresh, changed, core, ret)
        SELECT a.participant_id, false, {moved}, u.d_direct <> 0 OR u.d_sub <> 0, false
        FROM _anc a JOIN _upsum u ON u.pid = a.participant_id
        """  # noqa: S608 (fixed SQL text)
    )


def _changes(cur, p: dict) -> None:
    """`_d`: each changed row as it is now (sign +1, with `fresh` for a new row) and as it was
    (sign −1), with the flags of `_flags` and `core` / `ret` from `_c`. Unchanged rows are
    left out: their f(new) − f(old) is zero in every table."""
    cur.execute(
        f"""
        CREATE TEMP TABLE _d ON COMMIT DROP AS
        SELECT 1 AS sign, c.fresh, c.core, c.ret, n.*, {_flags("n")}
        FROM _c c JOIN _n n USING (participant_id) WHERE c.changed
        UNION ALL
        SELECT -1, false, c.core, c.ret, o.*, {_flags("o")}
        FROM _c c JOIN _old o USING (participant_id) WHERE c.changed
        """,  # noqa: S608 (fixed SQL text; values go as parameters)
        p,
    )


def _write(cur, p: dict) -> None:
    """Write the changed rows, once each (an unchanged row is not rewritten). A rebuild's
    rows are all new (it emptied the table under the writer lock): plain inserts."""
    cols = ", ".join(COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[2:])
    upsert = "" if p["full"] else f"ON CONFLICT (campaign_id, participant_id) DO UPDATE SET {updates}"
    cur.execute(
        f"""
        INSERT INTO analytics_participant ({cols}) SELECT {cols} FROM _d WHERE sign = 1
        ORDER BY participant_id  -- in index order: the primary key's pages are visited once
        {upsert}
        """  # noqa: S608 (fixed SQL text)
    )


def money_sync(cur, p: dict) -> None:
    """Recompute the campaign's reward money per grant day, channel and status from the ledger.

    A clawback entry ("clawback:<reward id>") counts against the channel of the reward it
    claws back; a reward for a referral ("referral:<id>:…") against the channel that invitee
    came through; anything else against the beneficiary's own channel."""
    cur.execute("DELETE FROM analytics_reward_day WHERE campaign_id = %(c)s", p)
    cur.execute(
        """
        INSERT INTO analytics_reward_day (campaign_id, day, channel_id, status, amount, count)
        WITH rw AS (
            SELECT w.created_at, w.status, w.amount, w.beneficiary_id,
                   CASE WHEN w.source LIKE 'clawback:%%' THEN orig.source ELSE w.source END AS src
            FROM referrals_reward w
            LEFT JOIN referrals_reward orig ON w.source LIKE 'clawback:%%' AND orig.id = CASE
                 WHEN split_part(w.source, ':', 2) ~ '^[0-9]{1,18}$'
                 THEN split_part(w.source, ':', 2)::bigint END
            WHERE w.campaign_id = %(c)s
        )
        SELECT %(c)s, (rw.created_at AT TIME ZONE %(tz)s)::date,
               coalesce(rr.channel_id, br.channel_id, 0), rw.status, sum(rw.amount), count(*)
        FROM rw
        LEFT JOIN referrals_referral rr ON rw.src LIKE 'referral:%%' AND rr.id = CASE
             WHEN split_part(rw.src, ':', 2) ~ '^[0-9]{1,18}$' THEN split_part(rw.src, ':', 2)::bigint END
        LEFT JOIN referrals_referral br ON br.campaign_id = %(c)s AND br.invitee_id = rw.beneficiary_id
        GROUP BY 2, 3, 4
        """,
        p,
    )
