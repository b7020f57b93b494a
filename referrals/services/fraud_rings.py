"""Identity rings: participants who share a device, an IP with the same user agent, or a
payout account (the unionid stands in for the WeChat account money goes to), taken as
the weakly connected components of that graph.

An identifier shared by more than `max_sharing` participants says nothing about who is
behind it (a carrier NAT, a campus network, a shared tablet in a shop) and is skipped,
or one hub would merge thousands of strangers into one ring.

The identifiers and who holds them come from one set-based SQL statement; PostgreSQL
groups them (only identifiers held by 2..max_sharing distinct participants come back),
and a union–find in Python joins the groups into rings. Pure reads: nothing is written.
"""

from django.db import connection, transaction

# (identifier, participant) for every identifier a participant has shown. The one-letter
# prefix keeps the kinds apart; a host() never contains a space, so "ip ua" is unambiguous.
IDENTITIES = """
    SELECT 'd' || first_device_id AS key, id AS pid
    FROM referrals_participant WHERE first_device_id <> ''
    UNION ALL
    SELECT 'd' || joined_device_id, invitee_id FROM referrals_referral WHERE joined_device_id <> ''
    UNION ALL
    SELECT 'd' || device_id, opener_id FROM referrals_shareopen WHERE device_id <> ''
    UNION ALL
    SELECT 'n' || host(first_ip) || ' ' || first_user_agent, id
    FROM referrals_participant WHERE first_ip IS NOT NULL AND first_user_agent <> ''
    UNION ALL
    SELECT 'n' || host(ip) || ' ' || user_agent, opener_id
    FROM referrals_shareopen WHERE ip IS NOT NULL AND user_agent <> ''
    UNION ALL
    SELECT 'u' || unionid, id FROM referrals_participant WHERE unionid <> ''
"""

# Each identifier held by 2..max distinct participants, with its holders.
GROUPS = f"""
    SELECT array_agg(pid)
    FROM (SELECT DISTINCT key, pid FROM ({IDENTITIES}) i) d
    GROUP BY key
    HAVING count(*) BETWEEN 2 AND %(max)s
"""  # noqa: S608 (constant text: no input is formatted into SQL)

# For one walk from a participant: the identifiers some participants showed, and who holds them.
KEYS_OF = f"SELECT DISTINCT key FROM ({IDENTITIES}) i WHERE pid = ANY(%s)"  # noqa: S608
HOLDERS_OF = f"""
    SELECT array_agg(DISTINCT pid) FROM ({IDENTITIES}) i WHERE key = ANY(%s)
    GROUP BY key HAVING count(DISTINCT pid) BETWEEN 2 AND %s
"""  # noqa: S608


def _find(parent: dict[int, int], x: int) -> int:
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:  # path compression
        parent[x], x = root, parent[x]
    return root


def _components(groups) -> dict[int, list[int]]:
    """Union–find over groups of participant ids: cluster id (smallest member) → sorted members."""
    parent: dict[int, int] = {}
    for members in groups:
        first = members[0]
        parent.setdefault(first, first)
        a = _find(parent, first)
        for other in members[1:]:
            parent.setdefault(other, other)
            b = _find(parent, other)
            if a != b:
                if b < a:  # the smaller id becomes the root: the root is the cluster's name
                    a, b = b, a
                parent[b] = a
    rings: dict[int, list[int]] = {}
    for member in parent:
        rings.setdefault(_find(parent, member), []).append(member)
    return {root: sorted(rings[root]) for root in sorted(rings) if len(rings[root]) >= 2}


def fraud_rings(*, max_sharing: int = 10) -> dict[int, list[int]]:
    """Every ring of ≥ 2 participants: its smallest participant id → its sorted member ids,
    in ascending order of cluster id. The same data always gives the same rings."""
    with transaction.atomic(), connection.cursor() as cursor:
        # SET LOCAL: only for this transaction, so the hash aggregate stays in memory
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute(GROUPS, {"max": int(max_sharing)})
        return _components(row[0] for row in cursor.fetchall())


def fraud_ring_of(participant_id: int, *, max_sharing: int = 10) -> list[int]:
    """The sorted members of the participant's ring (themselves included), or [] when they
    share no usable identifier with anyone. A breadth-first walk: one pair of statements
    per step away from the participant, not the whole graph."""
    seen = {int(participant_id)}
    frontier = [int(participant_id)]
    seen_keys: set[str] = set()
    with connection.cursor() as cursor:
        while frontier:
            cursor.execute(KEYS_OF, [frontier])
            keys = [k for (k,) in cursor.fetchall() if k not in seen_keys]
            seen_keys.update(keys)
            if not keys:
                break
            cursor.execute(HOLDERS_OF, [keys, int(max_sharing)])
            frontier = []
            for (members,) in cursor.fetchall():
                for member in members:
                    if member not in seen:
                        seen.add(member)
                        frontier.append(member)
    return sorted(seen) if len(seen) >= 2 else []


# The usable identifiers (held by 2..max participants in all) that ring members share.
LINKS_OF = f"""
    SELECT key, array_agg(DISTINCT pid ORDER BY pid) FROM ({IDENTITIES}) i
    WHERE key = ANY(%s) GROUP BY key HAVING count(DISTINCT pid) BETWEEN 2 AND %s
    ORDER BY key
"""  # noqa: S608
KINDS = {"d": "device", "n": "IP + user agent", "u": "account"}


def fraud_ring_links(members: list[int], *, max_sharing: int = 10) -> list[dict]:
    """What ties a ring together, for the case page's table and picture: each identifier the
    members share, its kind, and who holds it, ordered by kind and identifier."""
    if not members:
        return []
    with connection.cursor() as cursor:
        cursor.execute(KEYS_OF, [list(members)])
        keys = [k for (k,) in cursor.fetchall()]
        cursor.execute(LINKS_OF, [keys, int(max_sharing)])
        return [
            {"kind": KINDS[key[0]], "identifier": key[1:], "members": holders}
            for key, holders in cursor.fetchall()
        ]
