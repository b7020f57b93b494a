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
from datetime import timedelta

from django.db import connection, transaction

from campaigns.models import Campaign

from ..models import CampaignCounter

ADVISORY_NS = 0x616E61  # "ana"
SCAN_MARGIN = timedelta(milliseconds=200)  # clock_timestamp() vs xact_start: one clock
HORIZON_DAYS = 7  # METRICS.md: K-factor attribution horizon H
LTV_DAYS = 30  # order value counted within this many days of joining
MAX_BIT = 62
RETENTION_DAYS = 30
MONEY_EVERY = timedelta(seconds=60)
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
    (with wait=False). `full` scans the whole log for events not yet folded instead of
    starting at `fold_id_from` (the rebuild uses it on emptied tables)."""
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cur:
        if wait:
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ADVISORY_NS, campaign_id])
        else:
            cur.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [ADVISORY_NS, campaign_id])
            if not cur.fetchone()[0]:
                return None
        campaign = Campaign.objects.get(pk=campaign_id)
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


def _load_batch(cur, p: dict) -> int:
    scan = "AND e.id > %(id_from)s" if p["id_from"] else ""
    cur.execute(
        f"""
        CREATE TEMP TABLE _ev ON COMMIT DROP AS
        SELECT * FROM (
            SELECT e.id, e.occurred_at, e.participant_id, e.name, e.channel_id, e.inviter_id, e.properties,
                   %(me)s - age(e.xmin) AS xid
            FROM referrals_event e WHERE e.campaign_id = %(c)s {scan}
        ) t WHERE xid >= %(lo)s AND xid NOT IN (SELECT unnest(%(done)s::bigint[]))
        """,  # noqa: S608 (fixed SQL text; values go as parameters)
        p,
    )
    count = cur.rowcount
    cur.execute("ANALYZE _ev")  # temp tables have no statistics until analyzed: plans go wrong
    return count


def _rollups(cur, p: dict) -> None:
    cur.execute(
        """
        INSERT INTO analytics_minute (campaign_id, minute, channel_id, name, count)
        SELECT %(c)s, date_trunc('minute', occurred_at), coalesce(channel_id, 0), name, count(*)
        FROM _ev GROUP BY 2, 3, 4
        ON CONFLICT (campaign_id, minute, channel_id, name)
        DO UPDATE SET count = analytics_minute.count + excluded.count
        """,
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
    """Recompute the touched participant rows, walk the tree, apply the diffs. Returns rows changed."""
    cur.execute("CREATE TEMP TABLE _p (participant_id bigint PRIMARY KEY) ON COMMIT DROP")
    if has_events:
        cur.execute(
            "INSERT INTO _p SELECT participant_id FROM _ev WHERE participant_id IS NOT NULL "
            "UNION SELECT inviter_id FROM _ev WHERE name = 'open' AND inviter_id IS NOT NULL"
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
    cur.execute("ANALYZE _p")
    tick(p, "touched")
    cur.execute(
        "CREATE TEMP TABLE _old ON COMMIT DROP AS SELECT a.* FROM analytics_participant a "
        "JOIN _p USING (participant_id) WHERE a.campaign_id = %(c)s",
        p,
    )
    tick(p, "old_rows")
    _base_rows(cur, p, has_events)
    tick(p, "base_rows")
    _walk_up(cur, p)
    tick(p, "walk_up")
    cur.execute(
        "CREATE TEMP TABLE _new ON COMMIT DROP AS SELECT a.* FROM analytics_participant a "
        "JOIN _p USING (participant_id) WHERE a.campaign_id = %(c)s",
        p,
    )
    cur.execute(
        f"""
        CREATE TEMP TABLE _d ON COMMIT DROP AS
        SELECT 1 AS sign, n.*, {_flags("n")} FROM _new n
        UNION ALL
        SELECT -1 AS sign, o.*, {_flags("o")} FROM _old o
        """,  # noqa: S608 (fixed SQL text; values go as parameters)
        p,
    )
    from .diffs import apply_diffs

    cur.execute("ANALYZE _new; ANALYZE _d")
    tick(p, "new_rows")
    apply_diffs(cur, p)
    cur.execute("SELECT count(*) FROM _p")
    return cur.fetchone()[0]


AMOUNT_RE = r"^-?[0-9]{1,10}(\.[0-9]{1,4})?$"


def _base_rows(cur, p: dict, has_events: bool) -> None:
    if has_events:
        cur.execute(
            f"""
            CREATE TEMP TABLE _agg ON COMMIT DROP AS
            SELECT e.participant_id,
                count(*) FILTER (WHERE e.name = 'share') AS shares,
                min(e.occurred_at) FILTER (WHERE e.name = 'share') AS first_share_at,
                min(e.occurred_at) FILTER (WHERE e.name = 'open') AS first_open_at,
                coalesce(bit_or(1::bigint << least({MAX_BIT},
                    (e.occurred_at AT TIME ZONE %(tz)s)::date - (r.joined_at AT TIME ZONE %(tz)s)::date))
                  FILTER (WHERE e.name <> 'join' AND (e.occurred_at AT TIME ZONE %(tz)s)::date
                          >= (r.joined_at AT TIME ZONE %(tz)s)::date), 0) AS active_cal,
                coalesce(bit_or(1::bigint << least({MAX_BIT},
                    floor(extract(epoch FROM e.occurred_at - r.joined_at) / 86400)::int))
                  FILTER (WHERE e.name <> 'join' AND e.occurred_at >= r.joined_at), 0) AS active_roll,
                coalesce(sum(CASE WHEN (e.properties ->> 'amount') ~ '{AMOUNT_RE}'
                                  THEN (e.properties ->> 'amount')::numeric END) FILTER (
                    WHERE e.name = 'order_paid' AND e.occurred_at >= r.joined_at
                      AND e.occurred_at < r.joined_at + %(ltv)s), 0) AS ltv
            FROM _ev e
            LEFT JOIN referrals_referral r ON r.campaign_id = %(c)s AND r.invitee_id = e.participant_id
            WHERE e.participant_id IS NOT NULL
            GROUP BY e.participant_id
            """,  # noqa: S608 (fixed SQL text; values go as parameters)
            p,
        )
        cur.execute(
            "CREATE TEMP TABLE _og ON COMMIT DROP AS SELECT inviter_id AS participant_id, count(*) AS n "
            "FROM _ev WHERE name = 'open' AND inviter_id IS NOT NULL GROUP BY 1"
        )
        cur.execute("ANALYZE _agg; ANALYZE _og; ANALYZE _old; ANALYZE _v")
        tick(p, "activity")
    else:
        cur.execute(
            "CREATE TEMP TABLE _agg (participant_id bigint, shares int, first_share_at timestamptz, "
            "first_open_at timestamptz, active_cal bigint, active_roll bigint, ltv numeric) ON COMMIT DROP"
        )
        cur.execute("CREATE TEMP TABLE _og (participant_id bigint, n int) ON COMMIT DROP")
    cur.execute(
        """
        INSERT INTO analytics_participant AS a (
            campaign_id, participant_id, joined_at, cohort_day, channel_id, referrer_id, referrer_cohort_day,
            referrer_channel_id,
            cycle_s, depth, root_id, is_new, valid_at, voided, first_open_at, first_share_at, shares,
            opens_generated, children, direct_valid, downstream_valid, subtree, active_cal, active_roll, ltv)
        SELECT %(c)s, p.participant_id, r.joined_at, (r.joined_at AT TIME ZONE %(tz)s)::date, r.channel_id,
            r.inviter_id, (ir.joined_at AT TIME ZONE %(tz)s)::date, ir.channel_id,
            extract(epoch FROM r.joined_at - ir.joined_at)::int, r.depth, r.root_id,
            (r.id IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM referrals_referral o WHERE o.invitee_id = p.participant_id
                AND o.campaign_id <> %(c)s AND o.joined_at < %(start)s)),
            r.valid_at, v.participant_id IS NOT NULL, g.first_open_at, g.first_share_at,
            coalesce(g.shares, 0), coalesce(og.n, 0), 0, 0, 0, 1,
            coalesce(g.active_cal, 0), coalesce(g.active_roll, 0), coalesce(g.ltv, 0)
        FROM _p p
        LEFT JOIN referrals_referral r ON r.campaign_id = %(c)s AND r.invitee_id = p.participant_id
        LEFT JOIN referrals_referral ir ON ir.campaign_id = %(c)s AND ir.invitee_id = r.inviter_id
        LEFT JOIN _agg g ON g.participant_id = p.participant_id
        LEFT JOIN _og og ON og.participant_id = p.participant_id
        LEFT JOIN _v v ON v.participant_id = p.participant_id
        ON CONFLICT (campaign_id, participant_id) DO UPDATE SET
            joined_at = excluded.joined_at, cohort_day = excluded.cohort_day,
            channel_id = excluded.channel_id,
            referrer_id = excluded.referrer_id, referrer_cohort_day = excluded.referrer_cohort_day,
            referrer_channel_id = excluded.referrer_channel_id,
            cycle_s = excluded.cycle_s, depth = excluded.depth, root_id = excluded.root_id,
            is_new = excluded.is_new, valid_at = excluded.valid_at, voided = excluded.voided,
            first_open_at = least(a.first_open_at, excluded.first_open_at),
            first_share_at = least(a.first_share_at, excluded.first_share_at),
            shares = a.shares + excluded.shares,
            opens_generated = a.opens_generated + excluded.opens_generated,
            active_cal = a.active_cal | excluded.active_cal,
            active_roll = a.active_roll | excluded.active_roll,
            ltv = a.ltv + excluded.ltv
        """,
        p,
    )


def _walk_up(cur, p: dict) -> None:
    """Move inviters' counts by the changes of their descendants, one tree level per statement."""
    counted_new, counted_old = COUNTED.format(x="n"), COUNTED.format(x="o")
    cur.execute(
        f"""
        CREATE TEMP TABLE _step ON COMMIT DROP AS
        SELECT n.referrer_id AS pid,
               sum(({counted_new})::int - coalesce(({counted_old})::int, 0)) AS dv,
               sum((n.joined_at IS NOT NULL)::int - (o.joined_at IS NOT NULL)::int) AS dj
        FROM analytics_participant n JOIN _p USING (participant_id)
        LEFT JOIN _old o ON o.participant_id = n.participant_id
        WHERE n.campaign_id = %(c)s AND n.referrer_id IS NOT NULL
        GROUP BY n.referrer_id
        """,  # noqa: S608 (fixed SQL text; values go as parameters)
        p,
    )
    cur.execute("DELETE FROM _step WHERE dv = 0 AND dj = 0")
    cur.execute(
        "CREATE TEMP TABLE _up ON COMMIT DROP AS SELECT pid, dv AS d_direct, dj AS d_children, "
        "dv AS d_down, dj AS d_sub FROM _step"
    )
    while True:
        cur.execute(
            """
            CREATE TEMP TABLE _next ON COMMIT DROP AS
            SELECT a.referrer_id AS pid, sum(s.dv) AS dv, sum(s.dj) AS dj
            FROM _step s JOIN analytics_participant a ON a.campaign_id = %(c)s AND a.participant_id = s.pid
            WHERE a.referrer_id IS NOT NULL GROUP BY a.referrer_id
            """,
            p,
        )
        if not cur.rowcount:
            cur.execute("DROP TABLE _next")
            break
        cur.execute(
            """
            INSERT INTO _up (pid, d_direct, d_children, d_down, d_sub)
            SELECT pid, 0, 0, dv, dj FROM _next
            """
        )
        cur.execute("DROP TABLE _step")
        cur.execute("ALTER TABLE _next RENAME TO _step")
    cur.execute(
        "CREATE TEMP TABLE _upsum ON COMMIT DROP AS SELECT pid, sum(d_direct) d_direct, "
        "sum(d_children) d_children, sum(d_down) d_down, sum(d_sub) d_sub FROM _up GROUP BY pid"
    )
    cur.execute(
        "INSERT INTO _old SELECT a.* FROM analytics_participant a JOIN _upsum u ON u.pid = a.participant_id "
        "WHERE a.campaign_id = %(c)s AND NOT EXISTS (SELECT 1 FROM _p WHERE _p.participant_id = u.pid)",
        p,
    )
    cur.execute(
        """
        UPDATE analytics_participant a SET direct_valid = a.direct_valid + u.d_direct,
            children = a.children + u.d_children, downstream_valid = a.downstream_valid + u.d_down,
            subtree = a.subtree + u.d_sub
        FROM _upsum u WHERE a.campaign_id = %(c)s AND a.participant_id = u.pid
        """,
        p,
    )
    cur.execute("INSERT INTO _p SELECT pid FROM _upsum ON CONFLICT DO NOTHING")


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
