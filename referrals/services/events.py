"""The event log: append batches idempotently, with identity and attribution resolved at write.

This is the hot path of a Spring Festival campaign (tens of thousands of events a
second), so it is plain Python and SQL rather than DRF serializers: one query for the
caller's memberships, one INSERT … ON CONFLICT into the receipts, one COPY into the log.
"""

import hashlib
import re
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
from django.db import connection, transaction
from django.utils import timezone

from referrals.models import Event

MAX_BATCH = 500
MAX_PROPERTIES_BYTES = 4096
# Events older than this are refused; receipts are kept longer than this, so a late
# retry of an accepted event is always recognised (see event_receipts_prune).
ACCEPT_PAST = timedelta(days=7)
ACCEPT_FUTURE = timedelta(minutes=5)
RECEIPT_KEEP = ACCEPT_PAST + timedelta(days=1)

# \Z, not $: "$" also matches before a final newline, which would break COPY's rows.
ID_RE = re.compile(r"[A-Za-z0-9_.:\-]{1,64}\Z")
NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
SLUG_RE = re.compile(r"[-a-zA-Z0-9_]{1,80}\Z")

COPY_SQL = (
    "COPY referrals_event (received_at, occurred_at, campaign_id, participant_id, name, source, "
    "inviter_id, channel_id, client_event_id, properties) FROM STDIN"
)


@dataclass
class Outcome:
    client_event_id: str | None
    status: str  # accepted | duplicate | rejected
    code: str = ""
    message: str = ""

    def as_dict(self) -> dict:
        data = {"id": self.client_event_id, "status": self.status}
        if self.status == "rejected":
            data["code"] = self.code
            data["message"] = self.message
        return data


@dataclass
class Row:
    index: int
    client_event_id: str
    name: str
    occurred_at: datetime
    campaign_id: int | None
    participant_id: int
    properties: str | None
    inviter_id: int | None = None
    channel_id: int | None = None
    extra: dict = field(default_factory=dict)


def reject(index_id, code: str, message: str) -> Outcome:
    return Outcome(index_id, "rejected", code, message)


def parse_time(value) -> datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):  # unix milliseconds, as wx APIs and Date.now() give
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else None
    return None


def batch_key_for(body: bytes, given: str | None) -> str:
    """The client's batch id, or the body's hash: a byte-identical retry is the same batch."""
    if given:
        return given[:64]
    return hashlib.sha256(body).hexdigest()[:32]


def validate(
    raw: list, *, participant_id: int, campaign_ids: dict[str, int], now: datetime, prefix: str = ""
) -> tuple[list[Outcome | None], list[Row]]:
    """Check every event on its own; a bad one never blocks the others."""
    outcomes: list[Outcome | None] = [None] * len(raw)
    rows: list[Row] = []
    seen: set[str] = set()
    for i, event in enumerate(raw):
        if not isinstance(event, dict):
            outcomes[i] = reject(None, "event_not_object", "Each event must be a JSON object.")
            continue
        cid = event.get("id")
        if not isinstance(cid, str) or not ID_RE.match(cid):
            outcomes[i] = reject(
                cid if isinstance(cid, str) else None,
                "event_id_invalid",
                "`id` must be 1–64 characters of letters, digits and _ . : -",
            )
            continue
        if cid in seen:
            outcomes[i] = Outcome(cid, "duplicate")
            continue
        seen.add(cid)
        name = event.get("type")
        if not isinstance(name, str) or not NAME_RE.match(name):
            outcomes[i] = reject(
                cid, "event_type_invalid", "`type` must be a lowercase name such as open or share."
            )
            continue
        occurred = parse_time(event.get("time"))
        if occurred is None:
            outcomes[i] = reject(
                cid, "event_time_invalid", "`time` must be ISO 8601 with a time zone, or unix milliseconds."
            )
            continue
        if occurred < now - ACCEPT_PAST:
            outcomes[i] = reject(cid, "event_too_old", "The event is more than 7 days old.")
            continue
        if occurred > now + ACCEPT_FUTURE:
            outcomes[i] = reject(
                cid,
                "event_in_future",
                "The event is more than 5 minutes in the future; check the device clock.",
            )
            continue
        campaign_id = None
        slug = event.get("campaign")
        if slug is not None:
            if not isinstance(slug, str) or not SLUG_RE.match(slug) or slug not in campaign_ids:
                outcomes[i] = reject(cid, "campaign_unknown", "No open campaign has this slug.")
                continue
            campaign_id = campaign_ids[slug]
        props = event.get("properties")
        encoded = None
        if props is not None:
            if not isinstance(props, dict):
                outcomes[i] = reject(cid, "properties_invalid", "`properties` must be a JSON object.")
                continue
            try:
                packed = orjson.dumps(props)
            except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits
                outcomes[i] = reject(
                    cid, "properties_invalid", "`properties` holds a value JSON cannot store."
                )
                continue
            if b"\\u0000" in packed:  # PostgreSQL's jsonb cannot hold a NUL character
                outcomes[i] = reject(
                    cid, "properties_invalid", "`properties` may not contain NUL characters."
                )
                continue
            encoded = packed.decode()
            if len(packed) > MAX_PROPERTIES_BYTES:
                outcomes[i] = reject(cid, "properties_too_large", "`properties` may be at most 4 KB.")
                continue
        rows.append(Row(i, prefix + cid, name, occurred, campaign_id, participant_id, encoded, extra=event))
    return outcomes, rows


# Per-process caches for the hot path. Slug → id of campaigns that take events (kept
# for a few seconds, so a campaign archived now stops taking events within that time),
# and (participant, campaign) → (inviter, channel), which never changes once joined.
CAMPAIGN_CACHE_SECONDS = 10
_campaigns: dict[str, tuple[float, int]] = {}
_memberships: dict[tuple[int, int], tuple[int | None, int | None]] = {}
MEMBERSHIP_CACHE_SIZE = 100_000


def caches_clear(**kwargs) -> None:
    _campaigns.clear()
    _memberships.clear()


def campaign_ids_by_slug(slugs: set[str]) -> dict[str, int]:
    """Campaigns that take events: scheduled (pre-heat), live, paused (late events) and ended."""
    slugs = {slug for slug in slugs if SLUG_RE.match(slug)}  # never send junk to SQL
    now = time.monotonic()
    found = {slug: hit[1] for slug in slugs if (hit := _campaigns.get(slug)) and hit[0] > now}
    missing = [slug for slug in slugs if slug not in found]
    if missing:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT slug, id FROM campaigns_campaign WHERE slug = ANY(%s) "
                "AND status IN ('scheduled', 'live', 'paused', 'ended')",
                [missing],
            )
            for slug, campaign_id in cursor.fetchall():
                found[slug] = campaign_id
                _campaigns[slug] = (now + CAMPAIGN_CACHE_SECONDS, campaign_id)
    return found


def attribute(rows: list[Row]) -> None:
    """Stamp each row with the participant's inviter and channel in that campaign."""
    pairs = {(r.participant_id, r.campaign_id) for r in rows if r.campaign_id is not None}
    missing = [pair for pair in pairs if pair not in _memberships]
    if missing:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT invitee_id, campaign_id, inviter_id, channel_id FROM referrals_referral "
                "WHERE (invitee_id, campaign_id) IN (SELECT * FROM unnest(%s::bigint[], %s::integer[]))",
                [[p for p, _ in missing], [c for _, c in missing]],
            )
            if len(_memberships) > MEMBERSHIP_CACHE_SIZE:
                _memberships.clear()
            for p, c, inviter, channel in cursor.fetchall():
                _memberships[(p, c)] = (inviter, channel)  # only members: a join may come later
    for row in rows:
        row.inviter_id, row.channel_id = _memberships.get((row.participant_id, row.campaign_id), (None, None))


# Up to this many rows go in one INSERT … SELECT FROM unnest() statement (one round trip
# for receipts and events together); larger batches take the COPY path, which is faster
# per row once there are many.
SMALL_BATCH = 50

INSERT_SMALL = """
WITH input AS (
    SELECT * FROM unnest(%s::bigint[], %s::varchar[], %s::timestamptz[], %s::integer[], %s::varchar[],
                         %s::bigint[], %s::integer[], %s::jsonb[])
        AS t(participant_id, client_event_id, occurred_at, campaign_id, name,
             inviter_id, channel_id, properties)
), fresh AS (
    INSERT INTO referrals_eventreceipt (participant_id, client_event_id, received_at, batch_key)
    SELECT participant_id, client_event_id, %s, %s FROM input ORDER BY participant_id, client_event_id
    ON CONFLICT DO NOTHING RETURNING participant_id, client_event_id
), written AS (
    INSERT INTO referrals_event (received_at, occurred_at, campaign_id, participant_id, name, source,
                                 inviter_id, channel_id, client_event_id, properties)
    SELECT %s, i.occurred_at, i.campaign_id, i.participant_id, i.name, %s, i.inviter_id, i.channel_id,
           i.client_event_id, i.properties
    FROM input i JOIN fresh f USING (participant_id, client_event_id)
)
SELECT participant_id, client_event_id FROM fresh
"""


def append(rows: list[Row], *, source: int, batch_key: str, now: datetime) -> tuple[set[int], dict[int, str]]:
    """Write the rows not seen before; return (indexes written, {index: 'accepted'|'duplicate'} for the rest).

    Receipts and events are written together: in one statement for small batches, in
    the caller's transaction (required) for large ones.
    """
    if not rows:
        return set(), {}
    # Receipts are taken in one global order, so two overlapping batches in different
    # orders wait for each other instead of deadlocking.
    rows = sorted(rows, key=lambda r: (r.participant_id, r.client_event_id))
    with connection.cursor() as cursor:
        if len(rows) <= SMALL_BATCH:
            # psycopg's own cursor binds on the server, so after a few calls the statement
            # is prepared once per connection instead of planned on every request.
            raw = cursor.cursor.connection.cursor()
            raw.execute(
                INSERT_SMALL,
                [
                    [r.participant_id for r in rows],
                    [r.client_event_id for r in rows],
                    [r.occurred_at for r in rows],
                    [r.campaign_id for r in rows],
                    [r.name for r in rows],
                    [r.inviter_id for r in rows],
                    [r.channel_id for r in rows],
                    [r.properties for r in rows],
                    now,
                    batch_key,
                    now,
                    source,
                ],
            )
            fresh_keys = set(raw.fetchall())
            raw.close()
        else:
            cursor.execute(
                "INSERT INTO referrals_eventreceipt "
                "(participant_id, client_event_id, received_at, batch_key) "
                "SELECT p, c, %s, %s FROM unnest(%s::bigint[], %s::varchar[]) AS t(p, c) ORDER BY p, c "
                "ON CONFLICT DO NOTHING RETURNING participant_id, client_event_id",
                [now, batch_key, [r.participant_id for r in rows], [r.client_event_id for r in rows]],
            )
            fresh_keys = set(cursor.fetchall())
            fresh_rows = [r for r in rows if (r.participant_id, r.client_event_id) in fresh_keys]
            if fresh_rows:
                with cursor.cursor.copy(COPY_SQL) as copy:
                    copy.write(copy_text(fresh_rows, source=source, now=now))
        fresh = {r.index for r in rows if (r.participant_id, r.client_event_id) in fresh_keys}
        earlier: dict[int, str] = {}
        if len(fresh) < len(rows):
            seen = [r for r in rows if r.index not in fresh]
            cursor.execute(
                "SELECT participant_id, client_event_id, batch_key FROM referrals_eventreceipt "
                "WHERE (participant_id, client_event_id) IN "
                "(SELECT * FROM unnest(%s::bigint[], %s::varchar[]))",
                [[r.participant_id for r in seen], [r.client_event_id for r in seen]],
            )
            batch_of = {(p, c): b for p, c, b in cursor.fetchall()}
            for r in seen:
                same_batch = batch_of.get((r.participant_id, r.client_event_id)) == batch_key
                earlier[r.index] = "accepted" if same_batch else "duplicate"
    return fresh, earlier


def events_ingest(*, participant_id: int, events: list, batch_key: str, now: datetime | None = None) -> dict:
    """Take a batch of up to 500 mini-program events. Idempotent per (participant, event id);
    a retry of the same batch is answered exactly as the first time."""
    now = now or timezone.now()
    slugs = {e["campaign"] for e in events if isinstance(e, dict) and isinstance(e.get("campaign"), str)}
    outcomes, rows = validate(
        events, participant_id=participant_id, campaign_ids=campaign_ids_by_slug(slugs), now=now
    )
    attribute(rows)
    with transaction.atomic(durable=False) if len(rows) > SMALL_BATCH else nullcontext():
        written, earlier = append(rows, source=Event.Source.CLIENT, batch_key=batch_key, now=now)
    for row in rows:
        outcomes[row.index] = Outcome(
            row.client_event_id, "accepted" if row.index in written else earlier[row.index]
        )
    return summarize(outcomes, batch_key)


def summarize(outcomes: list[Outcome], batch_key: str) -> dict:
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for outcome in outcomes:
        counts[outcome.status] += 1
    return {"batch": batch_key, **counts, "results": [o.as_dict() for o in outcomes]}


def _text(value) -> str:
    return "\\N" if value is None else str(value)


def copy_text(rows: list[Row], *, source: int, now: datetime) -> str:
    """The rows in COPY's text format, built as one string: several times faster than
    adapting them row by row. Ids and names are checked to [A-Za-z0-9_.:-]; JSON text
    has no raw tab or newline, so only the backslashes of `properties` need escaping."""
    received = now.isoformat()
    lines = []
    for r in rows:
        props = "\\N" if r.properties is None else r.properties.replace("\\", "\\\\")
        lines.append(
            f"{received}\t{r.occurred_at.isoformat()}\t{_text(r.campaign_id)}\t{r.participant_id}\t{r.name}\t"
            f"{source}\t{_text(r.inviter_id)}\t{_text(r.channel_id)}\t{r.client_event_id}\t{props}\n"
        )
    return "".join(lines)


def event_record(
    *,
    participant_id: int,
    campaign_id: int | None,
    name: str,
    client_event_id: str,
    occurred_at: datetime,
    inviter_id: int | None = None,
    channel_id: int | None = None,
    properties: dict | None = None,
    source: int = Event.Source.SYSTEM,
    now: datetime | None = None,
) -> bool:
    """Write one event from a service (join, open). Idempotent by client_event_id.
    Call inside the service's transaction so the event and the state change commit together.
    `now` is the receipt time (`received_at`); the campaign simulator passes its clock."""
    row = Row(
        0,
        client_event_id,
        name,
        occurred_at,
        campaign_id,
        participant_id,
        orjson.dumps(properties).decode() if properties else None,
        inviter_id,
        channel_id,
    )
    written, _ = append([row], source=source, batch_key="", now=now or timezone.now())
    return bool(written)


def event_receipts_prune(*, now: datetime | None = None, chunk: int = 50_000, budget_s: float = 600) -> int:
    """Forget receipts of events too old to be accepted again. Run by beat, hourly.

    Deletes in chunks (short transactions, no long locks) until none are left or the
    time budget is spent; the next run carries on."""
    cutoff = (now or timezone.now()) - RECEIPT_KEEP
    deadline = time.monotonic() + budget_s
    deleted = 0
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "DELETE FROM referrals_eventreceipt WHERE ctid = ANY(ARRAY("
                "SELECT ctid FROM referrals_eventreceipt WHERE received_at < %s LIMIT %s))",
                [cutoff, chunk],
            )
            deleted += cursor.rowcount
            if cursor.rowcount < chunk:
                break
    return deleted
