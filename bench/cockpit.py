"""The cockpit at scale: tiles, funnel and retention from the derived tables, each against
the same question asked naively of the raw event log in the same run; the incremental
fold's rate; the full rebuild's time.

- A campaign is simulated in bulk mode (`simulator.engine.simulate(bulk=True)`), then
  `analytics_rebuild` folds its whole log: `rebuild_s` (the VACUUM of the derived tables
  that `manage.py analytics_rebuild` runs after it is timed apart, not in the figure).
- `fold_rate`: live traffic is replayed in micro-batches (copies of the campaign's own
  non-join events, stamped within the last minute, each batch its own transaction) and
  every batch is folded by `fold_campaign`, as the beat task does; events folded per
  second of folding (only the fold calls are timed; the per-batch seconds, rows
  recomputed and the load average are in the line). The batches are whole pages of the
  log drawn at random (TABLESAMPLE SYSTEM: events that arrived together, several per
  participant). `fold_rate_scattered` draws single events (TABLESAMPLE BERNOULLI: about
  one per participant, the worst case). Each run draws new samples. Before the first timed
  batch one fold with nothing new runs untimed: the first fold after a rebuild scans the
  campaign's whole log once (the rebuild leaves no older scan mark, see services/fold.py),
  which the beat's first pass pays once, not every micro-batch.
- `cockpit_tile_p95_ms`: each cockpit selector called `--repeat` times (p95 of each;
  the figure is the slowest tile); `cockpit_funnel_ms` and `cockpit_retention_ms` the
  medians of `funnel()` and `retention()`. Baselines: the same numbers computed by one
  plain SQL statement over `referrals_event` (and, for the funnel, the valid marks in
  `referrals_referral`), timed once in the same run.

The issue's scale is 1,000,000 participants / ~20M events (`--participants 1000000`).
It uses its own database (fission_bench_cockpit, or FISSION_BENCH_COCKPIT_DB), never the
shared one, dropped at the end unless --keep (which also reuses a campaign built before:
a million participants take about 25 minutes to simulate).

    .venv/bin/python -m bench.cockpit [--participants 10000] [--days 7] [--batches 10]
    .venv/bin/python -m bench.cockpit --participants 1000000 --keep [--build-only | --no-rebuild]
"""

import argparse
import os
import statistics
import time

from bench import harness
from bench.harness import Stack, emit, say

harness.BENCH_DB = os.environ.get("FISSION_BENCH_COCKPIT_DB", "fission_bench_cockpit")
os.environ.setdefault("FISSION_RISK_RANK_ENABLED", "false")


def _sql(statement: str, params=None) -> list:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def _ms(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


# The same questions, asked of the raw log. Each is one statement, as an analyst would write it.
NAIVE_FUNNEL = """
WITH firsts AS (
    SELECT participant_id,
           min(occurred_at) FILTER (WHERE name = 'share') AS shared,
           min(occurred_at) FILTER (WHERE name = 'open') AS opened,
           min(occurred_at) FILTER (WHERE name = 'join') AS joined
    FROM referrals_event WHERE campaign_id = %(c)s GROUP BY participant_id
), d7 AS (
    SELECT DISTINCT e.participant_id FROM referrals_event e JOIN firsts f USING (participant_id)
    WHERE e.campaign_id = %(c)s AND e.name <> 'join'
      AND (e.occurred_at AT TIME ZONE %(tz)s)::date = (f.joined AT TIME ZONE %(tz)s)::date + 7
), steps AS (
    SELECT f.*, r.valid_at, d7.participant_id IS NOT NULL AS d7
    FROM firsts f LEFT JOIN referrals_referral r ON r.campaign_id = %(c)s AND r.invitee_id = f.participant_id
    LEFT JOIN d7 USING (participant_id)
)
SELECT count(shared), count(opened),
       count(*) FILTER (WHERE joined BETWEEN opened AND opened + %(w)s),
       count(*) FILTER (WHERE joined BETWEEN opened AND opened + %(w)s AND valid_at <= opened + %(w)s),
       count(*) FILTER (WHERE joined BETWEEN opened AND opened + %(w)s AND valid_at <= opened + %(w)s AND d7),
       percentile_disc(0.5) WITHIN GROUP (ORDER BY joined - opened) FILTER (WHERE joined >= opened)
FROM steps
"""
NAIVE_RETENTION = """
WITH cohort AS (
    SELECT participant_id, (min(occurred_at) AT TIME ZONE %(tz)s)::date AS day
    FROM referrals_event WHERE campaign_id = %(c)s AND name = 'join' GROUP BY participant_id
), active AS (
    SELECT DISTINCT e.participant_id, (e.occurred_at AT TIME ZONE %(tz)s)::date - c.day AS n, c.day
    FROM referrals_event e JOIN cohort c USING (participant_id)
    WHERE e.campaign_id = %(c)s AND e.name <> 'join'
)
SELECT c.day, count(DISTINCT c.participant_id), a.n, count(DISTINCT a.participant_id)
FROM cohort c LEFT JOIN active a ON a.participant_id = c.participant_id AND a.n BETWEEN 1 AND 30
GROUP BY c.day, a.n
"""
# The goal burn-up tile: cumulative valid joins per hour, and the last 15 minutes' rate.
NAIVE_PACING = """
SELECT date_trunc('hour', occurred_at), count(*) FROM referrals_event
WHERE campaign_id = %(c)s AND name = 'join' GROUP BY 1 ORDER BY 1
"""


def build(args) -> int:
    """The simulated campaign's id; with --keep, the one an earlier run left if it has participants."""
    from simulator.engine import simulate

    found = _sql(
        "SELECT c.id, count(r.id) FROM campaigns_campaign c "
        "LEFT JOIN referrals_referral r ON r.campaign_id = c.id WHERE c.slug = 'cockpit-bench' GROUP BY c.id"
    )
    if found and found[0][1]:
        say(f"using the campaign simulated by an earlier run: {found[0][1]} participants")
        return found[0][0]
    started = time.perf_counter()
    summary = simulate(
        campaign_slug="cockpit-bench",
        participants=args.participants,
        days=args.days,
        seed=11,
        bulk=True,
        fraud_rings=max(3, args.participants // 10_000),
        retention=args.retention,
        events_per_day=args.events_per_day,
        progress=say,
    )
    say(f"simulated in {time.perf_counter() - started:.1f} s")
    for line in summary.lines():
        say(line)
    return _sql("SELECT id FROM campaigns_campaign WHERE slug = 'cockpit-bench'")[0][0]


def bench_rebuild(campaign_id: int) -> int:
    from analytics.services import analytics_rebuild, derived_tables_vacuum

    _sql("ANALYZE")
    started = time.perf_counter()
    result = analytics_rebuild(campaign_id=campaign_id)
    seconds = time.perf_counter() - started
    vacuum_started = time.perf_counter()
    derived_tables_vacuum()  # as manage.py analytics_rebuild does after rebuilding
    say(f"vacuum of the derived tables after the rebuild: {time.perf_counter() - vacuum_started:.1f} s")
    events = result["events"]
    say(f"rebuild: {events} events, {result['participants']} participant rows in {seconds:.1f} s")
    say(f"  steps, seconds from the start: {result['timing']}")
    emit("rebuild_s", seconds, "s", events=events, participants=result["participants"])
    return events


def bench_fold(campaign_id: int, batches: int, batch_size: int, *, scattered: bool) -> None:
    """Replay live traffic: each batch commits its own events, then one fold takes them.

    `scattered`: events drawn one by one at random from the whole log (about one event per
    participant a batch, each one a new active day: the harsh case, figure
    fold_rate_scattered). Otherwise whole pages of the log are drawn at random (events
    that arrived together: several per participant, as sessions send them): fold_rate."""
    from django.db import transaction

    from analytics.services import fold_campaign

    fold_campaign(campaign_id=campaign_id, wait=True)  # untimed: positions the scan mark (see above)
    total = _sql("SELECT events FROM analytics_counter WHERE campaign_id = %s", [campaign_id])[0][0]
    percent = min(100.0, 150.0 * batch_size / max(total, 1))
    sampling = "BERNOULLI" if scattered else "SYSTEM"
    seed = int(time.time()) % 1_000_000  # new events each run (a replayed day is no longer new)
    folded, spent, each, touched = 0, 0.0, [], []
    for i in range(batches):
        with transaction.atomic():
            _sql(
                f"""
                INSERT INTO referrals_event (received_at, occurred_at, campaign_id, participant_id, name,
                                             source, inviter_id, channel_id, client_event_id, properties)
                SELECT now(), now() - interval '1 millisecond' * (abs(hashtext(client_event_id)) %% 60000),
                       campaign_id, participant_id, name, source,
                       inviter_id, channel_id, client_event_id || ':replay' || %s, properties
                FROM referrals_event TABLESAMPLE {sampling} (%s) REPEATABLE (%s)
                WHERE campaign_id = %s AND name <> 'join' LIMIT %s
                """,
                [f"{seed}.{i}", percent, seed + i, campaign_id, batch_size],
            )
        started = time.perf_counter()
        result = fold_campaign(campaign_id=campaign_id, wait=True)
        seconds = time.perf_counter() - started
        spent += seconds
        each.append(round(seconds, 3))
        folded += result["events"]
        touched.append(result["participants"])
        say(f"fold {i + 1}: {result['events']} events, {result['participants']} rows")
        say(f"  steps, seconds from the start: {result['timing']}")
    say(f"fold: {folded} events in {batches} micro-batches, {spent:.2f} s folding")
    emit(
        "fold_rate_scattered" if scattered else "fold_rate",
        folded / spent,
        "events/s",
        events=folded,
        batches=batches,
        seconds=round(spent, 2),
        batch_seconds=each,
        participants_per_batch=touched,
        load_average=[round(x, 2) for x in os.getloadavg()],
    )


def bench_tiles(campaign_id: int, repeat: int) -> None:
    from datetime import timedelta

    from analytics import selectors
    from campaigns.models import Campaign

    campaign = Campaign.objects.get(pk=campaign_id)
    params = {
        "c": campaign_id,
        "tz": campaign.time_zone,
        "w": timedelta(hours=campaign.attribution_window_hours),
    }
    tiles = {
        "goal_pacing": lambda: selectors.goal_pacing(campaign),
        "last_hour": lambda: selectors.last_hour(campaign),
        "virality": lambda: selectors.virality(campaign),
        "sharers": lambda: selectors.sharers(campaign),
        "channels": lambda: selectors.channels(campaign),
        "reviews_and_money": lambda: selectors.reviews_and_money(campaign),
        "progress": lambda: selectors.progress([campaign_id]),
    }
    p95s = {}
    for name, fn in tiles.items():
        fn()  # warm
        p95s[name] = p95(_ms(fn, repeat))
        say(f"tile {name}: p95 {p95s[name]:.1f} ms")
    slowest = max(p95s, key=p95s.get)
    naive_pacing = statistics.median(_ms(lambda: _sql(NAIVE_PACING, params), 3))
    emit(
        "cockpit_tile_p95_ms",
        p95s[slowest],
        "ms",
        "raw-log burn-up query",
        naive_pacing,
        slowest=slowest,
        tiles={k: round(v, 2) for k, v in p95s.items()},
    )
    selectors.funnel(campaign)
    funnel_ms = statistics.median(_ms(lambda: selectors.funnel(campaign), repeat))
    naive_funnel = statistics.median(_ms(lambda: _sql(NAIVE_FUNNEL, params), 3))
    emit("cockpit_funnel_ms", funnel_ms, "ms", "raw-log ordered funnel", naive_funnel)
    retention_ms = statistics.median(_ms(lambda: selectors.retention(campaign), repeat))
    naive_retention = statistics.median(_ms(lambda: _sql(NAIVE_RETENTION, params), 3))
    emit("cockpit_retention_ms", retention_ms, "ms", "raw-log retention matrix", naive_retention)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--retention", type=float, default=0.7, help="chance of coming back on day 1")
    parser.add_argument("--events-per-day", type=float, default=6.6, help="events on an active day")
    parser.add_argument(
        "--keep", action="store_true", help="keep the database; reuse the campaign of an earlier --keep run"
    )
    parser.add_argument("--build-only", action="store_true", help="simulate the campaign, measure nothing")
    parser.add_argument(
        "--no-rebuild", action="store_true", help="skip the rebuild (with --keep: already folded)"
    )
    args = parser.parse_args()
    with Stack(serve=False, keep=args.keep):
        campaign_id = build(args)
        if args.build_only:
            return
        if args.no_rebuild:
            events = _sql("SELECT events FROM analytics_counter WHERE campaign_id = %s", [campaign_id])[0][0]
        else:
            events = bench_rebuild(campaign_id)
        emit("cockpit_events", events, "events", participants=args.participants)
        bench_fold(campaign_id, args.batches, args.batch_size, scattered=False)
        bench_fold(campaign_id, args.batches, args.batch_size, scattered=True)
        bench_tiles(campaign_id, args.repeat)


if __name__ == "__main__":
    main()
