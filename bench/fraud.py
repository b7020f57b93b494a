"""Fraud at scale: scoring a whole campaign of 140,000 sharers, and identity rings over
1,000,000 participants.

- fraud_score_140k: 140,000 sharers with 2–3 invitees each (a few with 6–8), about 11 %
  of sharers firing some signal and 2 % reaching review or decline, scored from scratch
  by `fraud_score_campaign`. Baseline: one plain scan joining the same referrals, opens
  and inviters.
- fraud_rings_1m: 1,000,000 participants with realistic identifiers (32-character device
  ids, unionids, an IP each with one of 40 WeChat user agents), 300,000 of them in one
  campaign with their join and open rows; 2 % in planted rings of 6 (linked by a shared
  device, payout account, or IP with user agent); NAT hubs of 100 (one carrier IP, one
  user agent) and shared tablets of ~30. Then `fraud_rings()`. Baseline: counting the
  distinct identifiers over the same rows.

Rows are generated server-side (INSERT … SELECT over generate_series), the fastest way to
fill the tables; the ids are chosen so the planted truth is known.

    .venv/bin/python -m bench.fraud [--sharers 140000] [--participants 1000000]
"""

import argparse
import os
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bench.harness import Stack, emit, say

# Scoring is measured without WeChat risk-rank lookups: those are network calls, at most
# FISSION_RISK_RANK_PER_PASS (200) a pass, whatever the campaign's size.
os.environ.setdefault("FISSION_RISK_RANK_ENABLED", "false")

UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 MicroMessenger/8.0."


def _sql(statement: str, params=None) -> list:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def _fix_sequences() -> None:
    for table in (
        "referrals_participant",
        "referrals_sharelink",
        "referrals_shareopen",
        "referrals_referral",
    ):
        _sql(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
        )
        _sql(f"ANALYZE {table}")


def _participants(where_ids: str, device: str, ip: str, ua: str, unionid: str) -> None:
    """Participants from a SELECT producing `i` (the id), with each column an expression of i."""
    _sql(f"""
        INSERT INTO referrals_participant
            (id, app_id, openid, unionid, nickname, avatar, profile_version, session_key, first_seen_at,
             first_device_id, first_ip, first_user_agent, last_login_at, token_version, is_blocked)
        SELECT i, 'wxbench', 'o' || i, {unionid}, '', '', 1, '', now(), {device}, ({ip})::inet, {ua},
               NULL, 1, false
        FROM ({where_ids}) ids""")


def _campaign(slug: str):
    from campaigns.models import Campaign

    now = datetime.now(UTC)
    return Campaign.objects.create(
        name=slug,
        slug=slug,
        status=Campaign.Status.LIVE,
        starts_at=now - timedelta(days=40),
        ends_at=now + timedelta(days=9),
        goal_target=1_000_000,
        budget_total=Decimal("1000000.00"),
        valid_event_name="first_order",
    )


def make_scoring_world(sharers: int) -> int:
    """Sharers 1..S; their invitees after them. Returns the campaign id."""
    campaign = _campaign("fraud-score")
    s_count = sharers
    ip = "'10.' || (i >> 16 & 255) || '.' || (i >> 8 & 255) || '.' || (i & 255)"
    _participants(
        f"SELECT i FROM generate_series(1, {s_count}) i",
        "md5('d' || i)",
        ip,
        f"'{UA}' || (i % 40)",
        "'oU' || left(md5('u' || i), 26)",
    )
    # invitees: k = 0..n-1 of sharer s (1-based); 2 each, 3 for odd sharers, 8 for the
    # velocity farms (s % 1000 = 7), 6 never-valid ones for the low-yield ones (s % 1000 = 8)
    _sql(f"""
        CREATE TEMP TABLE inv AS
        SELECT {s_count} + row_number() OVER (ORDER BY s, k) AS i, s, k
        FROM generate_series(1, {s_count}) s, generate_series(0, 7) k
        WHERE k < 2 OR (k = 2 AND s % 2 = 1) OR (s % 1000 = 7) OR (s % 1000 = 8 AND k < 6)""")
    _sql("CREATE UNIQUE INDEX ON inv (i)")
    _participants(
        "SELECT i FROM inv",
        "md5('d' || i)",
        ip,
        f"'{UA}' || (i % 40)",
        "'oU' || left(md5('u' || i), 26)",
    )
    c = campaign.pk
    _sql(f"""
        INSERT INTO referrals_sharelink (id, code, campaign_id, sharer_id, channel_id, created_at)
        SELECT i, 'L' || lpad(i::text, 15, '0'), {c}, i, NULL, now() - interval '30 days'
        FROM generate_series(1, {s_count}) i""")
    # sharers join as roots
    _sql(f"""
        INSERT INTO referrals_referral (id, campaign_id, invitee_id, inviter_id, root_id, link_id,
            channel_id, open_id, depth, attribution, status, joined_at, joined_ip, joined_device_id,
            valid_at, valid_event)
        SELECT p.id, {c}, p.id, NULL, p.id, NULL, NULL, NULL, 0, '{{}}', 'joined',
               now() - interval '30 days', p.first_ip, p.first_device_id, NULL, ''
        FROM referrals_participant p WHERE p.id <= {s_count}""")
    # what each invitee's open and join look like; signals by s % 100 (k = 0 only):
    # 1–4 shared device, 5–7 same IP and UA, 8–9 fast join, 10 device + fast (review),
    # 11 device + IP and UA (decline); s % 200 = 12: every invitee on one of a few farm phones
    _sql("""
        CREATE TEMP TABLE inv_rows AS
        SELECT inv.i, inv.s, inv.k,
               now() - interval '20 days' + (inv.s % 600) * interval '47 minutes'
                     + inv.k * interval '3 hours' AS joined_at,
               CASE WHEN inv.s % 1000 = 7 THEN interval '3 minutes'
                    WHEN inv.k = 0 AND inv.s % 100 IN (8, 9, 10) THEN interval '1 second'
                    ELSE interval '4 minutes' END AS open_gap,
               CASE WHEN inv.k = 0 AND inv.s % 100 IN (1, 2, 3, 4, 10, 11) THEN sh.first_device_id
                    WHEN inv.s % 200 = 12 THEN 'farm-' || (inv.s / 1000)
                    ELSE me.first_device_id END AS device,
               CASE WHEN inv.k = 0 AND inv.s % 100 IN (5, 6, 7, 11) THEN sh.first_ip
                    ELSE me.first_ip END AS ip,
               CASE WHEN inv.k = 0 AND inv.s % 100 IN (5, 6, 7, 11) THEN sh.first_user_agent
                    ELSE me.first_user_agent END AS ua,
               CASE WHEN inv.s % 1000 = 8 THEN false
                    WHEN inv.s % 1000 = 7 THEN true
                    ELSE (inv.s + inv.k) % 5 < 3 END AS valid
        FROM inv JOIN referrals_participant me ON me.id = inv.i
        JOIN referrals_participant sh ON sh.id = inv.s""")
    _sql("""
        INSERT INTO referrals_shareopen (id, link_id, opener_id, opened_at, ip, device_id, user_agent,
                                         client_event_id)
        SELECT i, s, i, joined_at - open_gap - k * interval '1 minute' * (s % 1000 = 7)::int,
               ip, device, ua, 'e' || i
        FROM inv_rows""")
    _sql(f"""
        INSERT INTO referrals_referral (id, campaign_id, invitee_id, inviter_id, root_id, link_id,
            channel_id, open_id, depth, attribution, status, joined_at, joined_ip, joined_device_id,
            valid_at, valid_event)
        SELECT i, {c}, i, s, s, s, NULL, i, 1, '{{}}', CASE WHEN valid THEN 'valid' ELSE 'joined' END,
               CASE WHEN s % 1000 = 7 THEN now() - interval '2 days' + k * interval '5 minutes'
                    ELSE joined_at END,
               ip, device,
               CASE WHEN NOT valid THEN NULL
                    WHEN s % 1000 = 7 THEN now() - interval '2 days' + k * interval '6 minutes'
                    ELSE joined_at + interval '1 day' END,
               CASE WHEN valid THEN 'first_order' ELSE '' END
        FROM inv_rows""")
    _sql("DROP TABLE inv_rows")
    _sql("DROP TABLE inv")
    _fix_sequences()
    return c


def bench_scoring(sharers: int) -> None:
    from django.db.models import Count

    from referrals.models import FraudCase
    from referrals.services.fraud import fraud_score_campaign

    started = time.perf_counter()
    campaign_id = make_scoring_world(sharers)
    [(invitees,)] = _sql(
        "SELECT count(*) FROM referrals_referral WHERE campaign_id = %s AND depth = 1", [campaign_id]
    )
    say(f"{sharers} sharers, {invitees} invitees generated in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    _sql(
        """SELECT count(*), count(DISTINCT r.inviter_id) FROM referrals_referral r
           JOIN referrals_shareopen o ON o.id = r.open_id
           JOIN referrals_participant inviter ON inviter.id = r.inviter_id
           WHERE r.campaign_id = %s""",
        [campaign_id],
    )
    baseline_s = time.perf_counter() - started
    say(f"baseline scan: {baseline_s:.2f} s; each signal alone (cut off at {SIGNAL_LIMIT_S} s)…")
    signal_s = time_signals(campaign_id)
    slow = {code: t for code, t in signal_s.items() if t is None}
    if slow:  # scoring would not finish in any useful time: say so rather than wait for it
        say(f"not scoring the whole campaign: {', '.join(slow)} did not finish in {SIGNAL_LIMIT_S} s")
        emit(
            "fraud_score_140k",
            sum(t if t is not None else SIGNAL_LIMIT_S for t in signal_s.values()),
            "s",
            "scan_join_count",
            baseline_s,
            target_s=30,
            sharers=sharers,
            invitees=invitees,
            finished=False,
            lower_bound=True,
            signals_s=signal_s,
        )
        return
    started = time.perf_counter()
    counts = fraud_score_campaign(campaign_id=campaign_id)
    ours_s = time.perf_counter() - started
    bands = dict(
        FraudCase.objects.filter(campaign_id=campaign_id)
        .values("band")
        .annotate(n=Count("id"))
        .values_list("band", "n")
    )
    emit(
        "fraud_score_140k",
        ours_s,
        "s",
        "scan_join_count",
        baseline_s,
        target_s=30,
        sharers=sharers,
        invitees=invitees,
        finished=True,
        cases=counts["opened"],
        bands=bands,
        signals_s=signal_s,
    )


SIGNAL_LIMIT_S = 120


def time_signals(campaign_id: int) -> dict[str, float | None]:
    """Each signal query of the scorer alone, as the scorer runs it; None if it ran past the limit."""
    from django.db import connection, transaction
    from django.db.utils import OperationalError

    from referrals.services.fraud import SIGNALS, fraud_rule_set_active

    params = {**fraud_rule_set_active().params, "c": campaign_id, "all": True, "only": []}
    took: dict[str, float | None] = {}
    for code, sql in SIGNALS.items():
        started = time.perf_counter()
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = '{SIGNAL_LIMIT_S}s'")
                cursor.execute(sql, params)
                rows = len(cursor.fetchall())
            took[code] = round(time.perf_counter() - started, 2)
            say(f"  {code}: {took[code]:.2f} s, {rows} sharers")
        except OperationalError:
            took[code] = None
            say(f"  {code}: cut off after {SIGNAL_LIMIT_S} s")
    return took


def make_rings_world(n: int) -> tuple[int, int]:
    """Participants 1..n. Planted rings: ids with (i / 6) % 50 = 1, six consecutive ids:
    members 0–1 share a device, 1–3 a unionid, 3–5 an IP with its user agent. Hubs: i % 200 = 7
    share one of 50 carrier IPs with one user agent (~100 each); i % 333 = 5 one of 100
    tablets (~30 each). Returns (rings planted, participants in them)."""
    ring = "((i / 6) % 50 = 1)"
    _participants(
        f"SELECT i FROM generate_series(1, {n}) i",
        f"""CASE WHEN {ring} AND i % 6 IN (0, 1) THEN 'ringdev-' || (i / 6)
                 WHEN i % 333 = 5 THEN 'tablet-' || ((i / 333) % 100)
                 ELSE md5('d' || i) END""",
        f"""CASE WHEN {ring} AND i % 6 IN (3, 4, 5)
                      THEN '172.' || (16 + (i / 6 >> 16)) || '.' || (i / 6 >> 8 & 255) || '.' || (i / 6 & 255)
                 WHEN i % 200 = 7 THEN '100.64.0.' || ((i / 200) % 50)
                 ELSE '10.' || (i >> 16 & 255) || '.' || (i >> 8 & 255) || '.' || (i & 255) END""",
        f"""CASE WHEN {ring} AND i % 6 IN (3, 4, 5) THEN 'ring-ua'
                 WHEN i % 200 = 7 THEN '{UA}50'
                 ELSE '{UA}' || (i % 40) END""",
        f"""CASE WHEN {ring} AND i % 6 IN (1, 2, 3) THEN 'ringu-' || (i / 6)
                 ELSE 'oU' || left(md5('u' || i), 26) END""",
    )
    # 300,000 of them in a campaign: every tenth a sharer, the others joined through a link
    c = _campaign("fraud-rings").pk
    members = min(n, 300_000)
    _sql(f"""
        INSERT INTO referrals_sharelink (id, code, campaign_id, sharer_id, channel_id, created_at)
        SELECT i, 'L' || lpad(i::text, 15, '0'), {c}, i, NULL, now()
        FROM generate_series(10, {members}, 10) i""")
    _sql(f"""
        INSERT INTO referrals_shareopen (id, link_id, opener_id, opened_at, ip, device_id, user_agent,
                                         client_event_id)
        SELECT p.id, p.id / 10 * 10, p.id, now() - interval '1 hour', p.first_ip, p.first_device_id,
               p.first_user_agent, 'e' || p.id
        FROM referrals_participant p WHERE p.id <= {members} AND p.id % 10 <> 0 AND p.id > 10""")
    _sql(f"""
        INSERT INTO referrals_referral (id, campaign_id, invitee_id, inviter_id, root_id, link_id,
            channel_id, open_id, depth, attribution, status, joined_at, joined_ip, joined_device_id,
            valid_at, valid_event)
        SELECT p.id, {c}, p.id, o.link_id, o.link_id, o.link_id, NULL, o.id,
               CASE WHEN o.id IS NULL THEN 0 ELSE 1 END, '{{}}', 'joined', now(), p.first_ip,
               p.first_device_id, NULL, ''
        FROM referrals_participant p LEFT JOIN referrals_shareopen o ON o.id = p.id
        WHERE p.id <= {members}""")
    _fix_sequences()
    [(rings, people)] = _sql(
        f"SELECT count(DISTINCT i / 6), count(*) FROM generate_series(1, {n}) i WHERE {ring}"
    )
    return rings, people


def bench_rings(n: int) -> None:
    from referrals.services.fraud_rings import IDENTITIES, fraud_rings

    _sql("TRUNCATE referrals_participant, campaigns_campaign CASCADE")
    started = time.perf_counter()
    planted, planted_people = make_rings_world(n)
    say(f"{n} participants ({planted} planted rings) generated in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    [(identifiers,)] = _sql(f"SELECT count(DISTINCT key) FROM ({IDENTITIES}) i")
    baseline_s = time.perf_counter() - started
    say(f"baseline: {identifiers} distinct identifiers counted in {baseline_s:.2f} s; rings…")
    started = time.perf_counter()
    rings = fraud_rings()
    ours_s = time.perf_counter() - started
    truth = {i: i // 6 for i in range(1, n + 1) if (i // 6) % 50 == 1}
    groups: dict[int, list[int]] = {}
    for i, g in truth.items():
        groups.setdefault(g, []).append(i)
    exact = sum(1 for members in rings.values() if members == groups.get(truth.get(members[0], -1)))
    emit(
        "fraud_rings_1m",
        ours_s,
        "s",
        "count_distinct_identifiers",
        baseline_s,
        target_s=120,
        participants=n,
        planted_rings=planted,
        rings_found=len(rings),
        rings_exact=exact,
        in_rings=sum(len(m) for m in rings.values()),
        planted_members=planted_people,
        largest=max((len(m) for m in rings.values()), default=0),
    )
    bench_ring_of(rings)


def _walks(ids: list[int]) -> list[float]:
    from referrals.services.fraud_rings import fraud_ring_of

    took = []
    for pid in ids:
        started = time.perf_counter()
        fraud_ring_of(pid)
        took.append((time.perf_counter() - started) * 1000)
    return took


def bench_ring_of(rings: dict[int, list[int]]) -> None:
    """One participant's ring, as the case page and a confirmation ask for it: ring members,
    hub members and loners. Baseline: the same walks with index scans switched off (what
    every walk cost before the ring indexes)."""
    from django.db import connection

    _sql("ANALYZE")
    members = [m for ms in list(rings.values())[:60] for m in ms[:1]]
    sample = members + [7 + 200 * k for k in range(40)] + [5 + 333 * k for k in range(40)] + [11, 13, 17]
    ours = sorted(_walks(sample))
    with connection.cursor() as cursor:
        cursor.execute("SET enable_indexscan = off; SET enable_bitmapscan = off")
        try:
            base = sorted(_walks(sample[::10]))
        finally:
            cursor.execute("RESET enable_indexscan; RESET enable_bitmapscan")
    p95 = ours[int(len(ours) * 0.95) - 1]
    emit(
        "fraud_ring_of_p95_ms",
        p95,
        "ms",
        "same_walk_without_index_scans_p95_ms",
        base[max(int(len(base) * 0.95) - 1, 0)],
        walks=len(ours),
        baseline_walks=len(base),
        median_ms=round(ours[len(ours) // 2], 2),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sharers", type=int, default=140_000)
    parser.add_argument("--participants", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["score", "rings"])
    args = parser.parse_args()
    with Stack(serve=False):
        if args.only != "rings":
            bench_scoring(args.sharers)
        if args.only != "score":
            bench_rings(args.participants)


if __name__ == "__main__":
    main()
