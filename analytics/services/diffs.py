"""Sums over participant rows, kept by adding f(new row) − f(old row).

`_d` holds each changed row twice: as it is now (sign +1) and as it was before the batch
(sign −1, absent for new rows), with the flags of `fold._flags`. Every statement below
adds Σ sign × f(row) per key to a derived table; keys whose sum is zero are skipped.
"""

RETENTION_DAYS = 30


def _upsert_add(cur, p: dict, table: str, keys: list[str], values: dict[str, str], source: str) -> None:
    from .fold import tick

    cols = keys + list(values)
    sums = [f"sum({expr}) AS {name}" for name, expr in values.items()]
    nonzero = " OR ".join(f"sum({expr}) <> 0" for expr in values.values())
    updates = ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in values)
    cur.execute(
        f"""
        INSERT INTO {table} (campaign_id, {", ".join(cols)})
        SELECT %(c)s, {", ".join(keys)}, {", ".join(sums)}
        FROM ({source}) src GROUP BY {", ".join(keys)} HAVING {nonzero}
        ON CONFLICT (campaign_id, {", ".join(keys)}) DO UPDATE SET {updates}
        """,  # noqa: S608 (fixed SQL text; values go as parameters)
        p,
    )
    tick(p, table.removeprefix("analytics_"))


def apply_diffs(cur, p: dict) -> None:
    cur.execute(
        """
        UPDATE analytics_counter k SET
            participants = k.participants + t.participants, joined = k.joined + t.joined,
            valid = k.valid + t.valid, referred_joined = k.referred_joined + t.referred_joined,
            referred_valid = k.referred_valid + t.referred_valid, parents = k.parents + t.parents,
            sharers = k.sharers + t.sharers, openers = k.openers + t.openers,
            funnel_join = k.funnel_join + t.funnel_join, funnel_valid = k.funnel_valid + t.funnel_valid,
            funnel_d7 = k.funnel_d7 + t.funnel_d7, valid_invitees_h = k.valid_invitees_h + t.inv_h
        FROM (SELECT coalesce(sum(sign), 0) participants, coalesce(sum(sign * joined), 0) joined,
                     coalesce(sum(sign * counted), 0) valid,
                     coalesce(sum(sign * joined) FILTER (WHERE referrer_id IS NOT NULL), 0) referred_joined,
                     coalesce(sum(sign * counted) FILTER (WHERE referrer_id IS NOT NULL), 0) referred_valid,
                     coalesce(sum(sign) FILTER (WHERE children > 0), 0) parents,
                     coalesce(sum(sign * sharer), 0) sharers, coalesce(sum(sign * f_open), 0) openers,
                     coalesce(sum(sign * f_join), 0) funnel_join,
                     coalesce(sum(sign * f_valid), 0) funnel_valid,
                     coalesce(sum(sign * f_d7), 0) funnel_d7, coalesce(sum(sign * inv_h), 0) inv_h FROM _d) t
        WHERE k.campaign_id = %(c)s
        """,
        p,
    )
    # Valid new users by the minute they became valid: the goal burn-up's series.
    _upsert_add(
        cur,
        p,
        "analytics_minute",
        ["minute", "channel_id", "name"],
        {"count": "sign"},
        # one row a minute (channel 0): the burn-up reads the whole campaign's series
        "SELECT sign, date_bin('1 minute', valid_at, %(epoch)s) AS minute, 0 AS channel_id, "
        "'$valid' AS name FROM _d WHERE core AND counted = 1",
    )
    # Retention: n = 0 is the cohort size; bit n of the activity mask is day n. Per user, one
    # row per active day in 1…30, plus the last active day and the first return day.
    cur.execute(
        f"""
        CREATE TEMP TABLE _ret ON COMMIT DROP AS
        SELECT sign, cohort_day, basis, m,
               CASE WHEN m >> 1 = 0 THEN NULL
                    ELSE least(64 - position('1' IN m::bit(64)::text), {RETENTION_DAYS + 1}) END AS last_n,
               CASE WHEN m >> 1 = 0 THEN NULL
                    ELSE 64 - position('1' IN ((m & ~1::bigint) & -(m & ~1::bigint))::bit(64)::text)
               END AS first_n
        FROM (SELECT sign, cohort_day, 1 AS basis, active_cal AS m FROM _d WHERE ret AND counted = 1
              UNION ALL SELECT sign, cohort_day, 2, active_roll FROM _d WHERE ret AND counted = 1) b
        """  # noqa: S608 (fixed SQL text)
    )
    _upsert_add(
        cur,
        p,
        "analytics_retention",
        ["cohort_day", "basis", "n"],
        {"classic": "sign * classic", "last_active": "sign * lst", "first_active": "sign * fst"},
        f"""
        SELECT sign, cohort_day, basis, 0 AS n, 1 AS classic, 0 AS lst, 0 AS fst FROM _ret
        UNION ALL
        SELECT sign, cohort_day, basis, g.n, 1, 0, 0 FROM _ret
        JOIN generate_series(1, {RETENTION_DAYS}) AS g(n) ON (m >> g.n) & 1 = 1
        UNION ALL
        SELECT sign, cohort_day, basis, last_n, 0, 1, 0 FROM _ret WHERE last_n IS NOT NULL
        UNION ALL
        SELECT sign, cohort_day, basis, first_n, 0, 0, 1 FROM _ret WHERE first_n <= {RETENTION_DAYS}
        """,  # noqa: S608 (fixed SQL text)
    )
    # Viral counts: per inviter cohort day (kind 1) and per generation (kind 2).
    _upsert_add(
        cur,
        p,
        "analytics_viral",
        ["kind", "key"],
        {
            "members": "sign * members",
            "valid": "sign * valid",
            "sharers": "sign * sharers",
            "shares": "sign * shares",
            "valid_invitees_h": "sign * inv",
        },
        """
        SELECT sign, 1 AS kind, cohort_day - DATE '1970-01-01' AS key, joined AS members, counted AS valid,
               sharer AS sharers, shares, 0 AS inv FROM _d WHERE core AND joined = 1
        UNION ALL
        SELECT sign, 1, referrer_cohort_day - DATE '1970-01-01', 0, 0, 0, 0, inv_h FROM _d
        WHERE core AND inv_h = 1
        UNION ALL
        SELECT sign, 2, depth, joined, counted, sharer, shares, 0 FROM _d WHERE core AND joined = 1
        """,
    )
    _upsert_add(
        cur,
        p,
        "analytics_duration",
        ["metric", "minute"],
        {"count": "sign"},
        """
        SELECT sign, 1 AS metric, cycle_s / 60 AS minute FROM _d
        WHERE core AND joined = 1 AND referrer_id IS NOT NULL
        UNION ALL
        SELECT sign, 2, floor(extract(epoch FROM joined_at - first_open_at) / 60)::int
        FROM _d WHERE core AND f_join = 1
        UNION ALL
        SELECT sign, 3, floor(extract(epoch FROM valid_at - joined_at) / 60)::int FROM _d
        WHERE core AND f_valid = 1
        UNION ALL
        SELECT sign, 4, floor(extract(epoch FROM first_link_open_at - first_share_at) / 60)::int FROM _d
        WHERE core AND first_link_open_at >= first_share_at
        """,
    )
    _upsert_add(
        cur,
        p,
        "analytics_cascade",
        ["root_id"],
        {"size": "sign", "valid": "sign * counted", "s1": "sign * s1", "s2": "sign * s2"},
        """
        SELECT sign, root_id, counted,
               CASE WHEN referrer_id IS NULL THEN 0 ELSE subtree END::bigint AS s1,
               CASE WHEN referrer_id IS NULL THEN 0 ELSE subtree::bigint * subtree END AS s2
        FROM _d WHERE core AND joined = 1
        """,
    )
    # Trees only grow, so the deepest member only gets deeper; a depth is set once, when its
    # member joins, so only rows that joined in this batch can deepen a tree (reading every
    # recomputed row joined the whole cascade table, 0.1 s a batch at 1M participants).
    cur.execute(
        """
        UPDATE analytics_cascade c SET max_depth = t.d
        FROM (SELECT n.root_id, max(n.depth) d FROM _n n LEFT JOIN _old o USING (participant_id)
              WHERE n.joined_at IS NOT NULL AND (o.participant_id IS NULL OR o.joined_at IS NULL
                    OR o.depth IS DISTINCT FROM n.depth OR o.root_id IS DISTINCT FROM n.root_id)
              GROUP BY n.root_id) t
        WHERE c.campaign_id = %(c)s AND c.root_id = t.root_id AND c.max_depth < t.d
        """,
        p,
    )
    _upsert_add(
        cur,
        p,
        "analytics_sharer",
        ["shares", "direct_valid"],
        {"sharers": "sign"},
        "SELECT sign, shares, direct_valid FROM _d WHERE core AND (shares > 0 OR direct_valid > 0)",
    )
    cur.execute("DELETE FROM analytics_sharer WHERE campaign_id = %(c)s AND sharers = 0", p)
    _upsert_add(
        cur,
        p,
        "analytics_channel_day",
        ["day", "channel_id"],
        {
            "joins": "sign * joins",
            "valid": "sign * counted",
            "referred_valid": "sign * referred",
            "sharers": "sign * sharer",
            "invited_valid": "sign * invited",
            "ltv": "sign * ltv_valid",
        },
        """
        SELECT sign, cohort_day AS day, coalesce(channel_id, 0) AS channel_id, 1 AS joins, counted, sharer,
               (counted = 1 AND referrer_id IS NOT NULL)::int AS referred, 0 AS invited,
               CASE WHEN counted = 1 THEN ltv ELSE 0 END AS ltv_valid
        FROM _d WHERE core AND joined = 1
        UNION ALL
        SELECT sign, cohort_day, coalesce(referrer_channel_id, 0), 0, 0, 0, 0, 1, 0
        FROM _d WHERE core AND counted = 1 AND referrer_id IS NOT NULL
        """,
    )
